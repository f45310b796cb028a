#!/usr/bin/env bash
# Run MLflow's own REST tests (materialised from a git dir at run time) against an
# external tracking server executable. Our glue only; tests/upstream/run is the project's
# entry (it sets everything below), docs/compatibility.md the results.
#
#   SERVER_BIN=/path/to/mlflow MLFLOW_GIT=<git dir of mlflow> \
#     OUT_DIR=/tmp/upstream-out bash run_upstream.sh [extra pytest args]
#
# Env:
#   SERVER_BIN         server executable; started as `SERVER_BIN server --host 127.0.0.1
#                      --port P --backend-store-uri sqlite:///X.db [--default-artifact-root R]
#                      --artifacts-destination DIR $SERVER_EXTRA_ARGS` (required)
#   MLFLOW_GIT         bare git dir of mlflow/mlflow or a fork (required)
#   MLFLOW_REF         commit/tag to take the tests from (default: v3.17.2 if the git dir
#                      has it, else the pinned fallback commit below)
#   UPSTREAM_VENV      venv with mlflow + pytest (default: the repository's .venv-upstream,
#                      made by tests/setup-python.sh from tests/upstream/requirements.txt)
#   UPSTREAM_TESTS     test files/ids, space separated (default: $DEFAULT_TESTS)
#   OUT_DIR            results: summary.txt, junit.xml, failed.txt, ... (default ./upstream-out)
#   UPSTREAM_WORKDIR   where the tests are unpacked (default: a fresh mktemp dir, removed after)
#   UPSTREAM_TIMEOUT   per-test timeout in seconds (default 300)
#   UPSTREAM_STRICT    1: exit with pytest's code (default: 0 whenever pytest ran)
#   SERVER_EXTRA_ARGS, UPSTREAM_DB, UPSTREAM_PORT_MIN/MAX, UPSTREAM_START_TIMEOUT,
#   UPSTREAM_DESELECT  see external_server.py
set -euo pipefail

# The whole body is one function, parsed before it runs: editing this file mid-run is safe.
main() {
  HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  : "${SERVER_BIN:?set SERVER_BIN to the server executable under test}"
  : "${MLFLOW_GIT:?set MLFLOW_GIT to a bare git dir of mlflow/mlflow (or a fork)}"

  # Newest upstream test revision this machine can get (mlflow/mlflow itself is too big to
  # fetch here; the maintainer fork harupy/mlflow has master up to this commit, 2026-04-29,
  # version 3.11.2.dev0). deselect.txt was made against it.
  FALLBACK_REF=a89bed67689f916c79a8e1c1ad6cfb5cd7649c77
  WANT_TAG=v3.17.2
  DEFAULT_TESTS="tests/tracking/test_rest_tracking.py tests/tracking/test_model_registry.py tests/tracking/test_mlflow_artifacts.py tests/tracking/test_client_webhooks.py tests/store/model_registry/test_rest_store_webhooks.py tests/tracing/test_otel_logging.py tests/tracing/test_otel_loading.py"

  UPSTREAM_VENV="${UPSTREAM_VENV:-$(cd "$HERE/../.." && pwd)/.venv-upstream}"
  OUT_DIR="$(mkdir -p "${OUT_DIR:-$PWD/upstream-out}" && cd "${OUT_DIR:-$PWD/upstream-out}" && pwd)"
  TESTS="${UPSTREAM_TESTS:-$DEFAULT_TESTS}"
  case "$SERVER_BIN" in
    */*) SERVER_BIN="$(cd "$(dirname "$SERVER_BIN")" && pwd)/$(basename "$SERVER_BIN")" ;;  # absolute: pytest runs elsewhere
    *) SERVER_BIN="$(command -v "$SERVER_BIN" || echo "$SERVER_BIN")" ;;
  esac
  [ -x "$SERVER_BIN" ] || { echo "run_upstream: SERVER_BIN=$SERVER_BIN is not executable" >&2; exit 2; }
  [ -x "$UPSTREAM_VENV/bin/python" ] || { echo "run_upstream: no venv at $UPSTREAM_VENV" >&2; exit 2; }

  if [ -z "${MLFLOW_REF:-}" ]; then
    if git -C "$MLFLOW_GIT" rev-parse -q --verify "$WANT_TAG^{commit}" >/dev/null; then
      MLFLOW_REF="$WANT_TAG"
    elif git -C "$MLFLOW_GIT" rev-parse -q --verify "$FALLBACK_REF^{commit}" >/dev/null; then
      MLFLOW_REF="$FALLBACK_REF"
      echo "run_upstream: $WANT_TAG not in $MLFLOW_GIT; using tests of $FALLBACK_REF" >&2
    else
      echo "run_upstream: neither $WANT_TAG nor $FALLBACK_REF is in $MLFLOW_GIT; set MLFLOW_REF" >&2
      exit 2
    fi
  fi
  REF_SHA="$(git -C "$MLFLOW_GIT" rev-parse "$MLFLOW_REF^{commit}")"

  CLEAN_WORKDIR=0
  if [ -z "${UPSTREAM_WORKDIR:-}" ]; then
    UPSTREAM_WORKDIR="$(mktemp -d /tmp/mlflow-upstream.XXXXXX)"
    CLEAN_WORKDIR=1
  fi
  mkdir -p "$UPSTREAM_WORKDIR"
  cleanup() { if [ "$CLEAN_WORKDIR" = 1 ]; then rm -rf "$UPSTREAM_WORKDIR"; fi; }
  trap cleanup EXIT

  SRC="$UPSTREAM_WORKDIR/src"
  rm -rf "$SRC" && mkdir -p "$SRC"
  # Only tests/ and pyproject.toml (pytest config). git may print "invalid object" for
  # large files under docs/ that a snapshot lacks; they are not part of what we extract.
  git -C "$MLFLOW_GIT" archive "$REF_SHA" tests pyproject.toml 2> >(grep -v 'invalid object' >&2) \
    | tar -x -C "$SRC"
  [ -f "$SRC/tests/tracking/integration_test_utils.py" ] || { echo "run_upstream: extraction failed" >&2; exit 2; }

  rm -f "$OUT_DIR"/summary.txt "$OUT_DIR"/failed.txt "$OUT_DIR"/passed.txt "$OUT_DIR"/skipped.txt \
        "$OUT_DIR"/deselected.txt "$OUT_DIR"/junit.xml "$OUT_DIR"/no_server*.txt \
        "$OUT_DIR"/stale_deselect_entries.txt
  rm -rf "$OUT_DIR/server-logs"
  {
    echo "tests: $MLFLOW_GIT @ $MLFLOW_REF ($REF_SHA)"
    echo "client: $("$UPSTREAM_VENV/bin/python" -c 'import mlflow; print("mlflow", mlflow.__version__)')"
    echo "server: $SERVER_BIN ${SERVER_EXTRA_ARGS:-}"
    echo "started: $(date -u +%FT%TZ)"
  } | tee "$OUT_DIR/run-info.txt"

  start=$(date +%s)
  set +e
  (
    cd "$SRC"
    # CI=true would make upstream's conftest build and serve an MLflow wheel (--serve-wheel).
    export CI=false
    export PYTHONPATH="$HERE:$SRC${PYTHONPATH:+:$PYTHONPATH}"
    export UPSTREAM_WORK="$UPSTREAM_WORKDIR/servers" OUT_DIR SERVER_BIN
    export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
    # shellcheck disable=SC2086
    "$UPSTREAM_VENV/bin/python" -m pytest \
      -p external_server_plugin -p no:cacheprovider \
      -o addopts="-p no:legacypath --strict-markers" \
      --timeout="${UPSTREAM_TIMEOUT:-300}" \
      --color=no -q -rfE --tb=short --junitxml="$OUT_DIR/junit.xml" \
      $TESTS "$@"
  ) 2>&1 | tee "$OUT_DIR/pytest.log"
  rc=${PIPESTATUS[0]}
  set -e
  elapsed=$(( $(date +%s) - start ))
  echo "runtime: ${elapsed}s" >> "$OUT_DIR/run-info.txt"

  if [ -f "$OUT_DIR/summary.txt" ]; then
    summary="$(cat "$OUT_DIR/summary.txt")"
  else
    summary="upstream: 0 passed, 1 failed, 0 skipped, 0 deselected"
    echo "run_upstream: pytest ended without a summary (rc=$rc)" >&2
  fi
  echo "runtime ${elapsed}s; pytest rc=$rc; results in $OUT_DIR"
  echo "$summary"
  # Exit 0 when pytest ran (its rc is 1 with failures): the score is the summary line.
  # UPSTREAM_STRICT=1 passes pytest's exit code through instead.
  if [ "${UPSTREAM_STRICT:-0}" = 1 ]; then exit "$rc"; fi
  case "$rc" in 0|1) exit 0 ;; *) exit "$rc" ;; esac
}

main "$@"
exit
