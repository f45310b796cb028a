#!/usr/bin/env bash
# Creates a pinned Python environment from a full `pip freeze`:
#   tests/setup-python.sh                 .venv from tests/requirements.txt: the official MLflow
#                                         client the end-to-end tests use (also installs jq)
#   tests/setup-python.sh VENV REQ        VENV from REQ, e.g. .venv-upstream from
#                                         tests/upstream/requirements.txt (MLflow's own tests)
# Idempotent: the install is skipped when the sha256 of REQ matches VENV/.requirements.sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${1:-.venv}
req=${2:-tests/requirements.txt}
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ]; then
  # Debian ships venv (and its pip) in a separate package.
  if ! python3 -m venv "$venv" && [ "$(id -u)" = 0 ]; then
    rm -rf "$venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$venv/.requirements.sha256"
fi

# The seed's `curl ... | jq '.[].name'` line is run for real by the e2e suite.
if [ $# -eq 0 ] && ! command -v jq >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
  else
    echo "setup-python.sh: jq is missing; install it (apt-get install jq)" >&2
    exit 1
  fi
fi
