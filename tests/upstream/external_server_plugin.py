"""pytest plugin: run MLflow's own upstream REST tests against an external server binary.

Our glue code only. external_server.py starts and stops $SERVER_BIN in place of the
upstream fixtures' in-process server; the hooks here install it before the test modules
import their helpers, drop the tests deselect.txt lists (one reason each), and write the
result files (summary.txt, failed.txt, passed.txt, skipped.txt, deselected.txt,
no_server*.txt, stale_deselect_entries.txt) to $OUT_DIR. See external_server.py for the
environment variables.
"""

from __future__ import annotations

import contextlib
import re
import socket
from pathlib import Path

import pytest

import external_server as es
from external_server import _env, _patch_module, _record_backend_stores, _st, get_safe_port

_HERE = Path(__file__).resolve().parent

# ------------------------------------------------------------------------ hooks

_deselect_reasons: dict[str, str] = {}
_results: dict[str, str] = {}


def _no_dns() -> bool:
    """True when example.com does not resolve (no DNS in this sandbox)."""
    try:
        socket.getaddrinfo("example.com", 443)
    except OSError:
        return True
    return False


# "[condition] entry  # reason": the entry applies only while the condition holds
_CONDITIONS = {"no-dns": _no_dns}


def _load_deselect(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    if not path.exists():
        return entries
    cache: dict[str, bool] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.match(r"\[([a-z-]+)\]\s+(.*)", line):
            cond, line = m.group(1), m.group(2)
            if cond not in _CONDITIONS:
                raise pytest.UsageError(f"deselect list: unknown condition [{cond}]")
            if cond not in cache:
                cache[cond] = _CONDITIONS[cond]()
            if not cache[cond]:
                continue
            line = line.replace("#", f"# [{cond}]", 1)
        nodeid, _, reason = line.partition("#")
        entries[nodeid.strip()] = reason.strip() or "no reason given"
    return entries


def pytest_configure(config):
    if not _env("SERVER_BIN"):
        raise pytest.UsageError("external_server_plugin: SERVER_BIN is not set")
    _st()
    # Patch the helpers before any test module imports names from them.
    import mlflow.server.handlers as handlers

    handlers.initialize_backend_stores = _record_backend_stores
    import tests.helper_functions as helper_functions

    helper_functions.get_safe_port = get_safe_port
    import tests.tracking.integration_test_utils as itu

    _patch_module(itu)
    deselect_file = Path(_env("UPSTREAM_DESELECT") or _HERE / "deselect.txt")
    _deselect_reasons.update(_load_deselect(deselect_file))


def pytest_itemcollected(item):
    _patch_module(getattr(item, "module", None))


def _match(nodeid: str) -> str | None:
    """Entry matching nodeid: an entry "re:<regex>" searched in the id (checked first),
    the exact id, the id without [params], or a file/class prefix."""
    for key in _deselect_reasons:
        if key.startswith("re:") and re.search(key[3:], nodeid):
            return key
    if nodeid in _deselect_reasons:
        return nodeid
    base = nodeid.split("[", 1)[0]
    if base in _deselect_reasons:
        return base
    parts = base.split("::")
    for i in range(len(parts) - 1, 0, -1):
        prefix = "::".join(parts[:i])
        if prefix in _deselect_reasons:
            return prefix
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    keep, dropped, used = [], [], set()
    for item in items:
        key = _match(item.nodeid)
        if key is None:
            keep.append(item)
        else:
            used.add(key)
            dropped.append((item, _deselect_reasons[key]))
    if dropped:
        config.hook.pytest_deselected(items=[item for item, _ in dropped])
        items[:] = keep
    st = _st()
    with open(st.out_dir / "deselected.txt", "w") as f:
        for item, reason in dropped:
            f.write(f"{item.nodeid}  # {reason}\n")
    stale = sorted(set(_deselect_reasons) - used)
    if stale and not config.getoption("keyword") and not config.getoption("markexpr"):
        collected_files = {item.nodeid.split("::", 1)[0] for item in items} | {
            item.nodeid.split("::", 1)[0] for item, _ in dropped
        }
        stale = [s for s in stale if s.startswith("re:") or s.split("::", 1)[0] in collected_files]
        if stale:
            with open(st.out_dir / "stale_deselect_entries.txt", "w") as f:
                f.write("\n".join(stale) + "\n")


def pytest_runtest_setup(item):
    _st().current_nodeid = item.nodeid
    for server in es._live:
        server.tests.add(item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if es._live:
        es._server_used.add(item.nodeid)
    yield
    if es._live:
        es._server_used.add(item.nodeid)


def pytest_runtest_logreport(report):
    if report.failed:
        for server in es._live:
            server.saw_failure = True
    if report.outcome == "rerun":  # upstream's flaky-rerun marker: a later attempt decides
        _results.pop(report.nodeid, None)
        return
    prev = _results.get(report.nodeid)
    if report.failed:
        _results[report.nodeid] = "failed"
    elif report.skipped and prev != "failed":
        _results[report.nodeid] = "skipped"
    elif report.when == "call" and report.passed and prev is None:
        _results[report.nodeid] = "passed"
    if report.when == "teardown":
        es._final[report.nodeid] = _results.get(report.nodeid, "skipped")
        if _results.get(report.nodeid) == "passed" and report.nodeid not in es._server_used:
            _no_server.append(report.nodeid)
        es._sweep_logs()


_no_server: list[str] = []  # passed without any external server alive (only known in-process)


def pytest_sessionfinish(session, exitstatus):
    for server in list(es._live):
        server.stop()
    es._sweep_logs(final=True)
    st = _st()
    worker = _env("PYTEST_XDIST_WORKER")
    if worker:  # the controller writes the summary; only workers know who used a server
        (st.out_dir / f"no_server.{worker}.txt").write_text("".join(f"{n}\n" for n in _no_server))
        return
    _write_summary(session.config)


def _write_summary(config) -> None:
    st = _st()
    passed = sorted(n for n, r in _results.items() if r == "passed")
    failed = sorted(n for n, r in _results.items() if r == "failed")
    skipped = sorted(n for n, r in _results.items() if r == "skipped")
    deselected = 0
    if (st.out_dir / "deselected.txt").exists():
        deselected = sum(1 for _ in open(st.out_dir / "deselected.txt"))
    line = (
        f"upstream: {len(passed)} passed, {len(failed)} failed, "
        f"{len(skipped)} skipped, {deselected} deselected"
    )
    (st.out_dir / "summary.txt").write_text(line + "\n")
    (st.out_dir / "failed.txt").write_text("".join(f"{n}\n" for n in failed))
    (st.out_dir / "passed.txt").write_text("".join(f"{n}\n" for n in passed))
    (st.out_dir / "skipped.txt").write_text("".join(f"{n}\n" for n in skipped))
    if not getattr(config.option, "numprocesses", None):
        (st.out_dir / "no_server.txt").write_text("".join(f"{n}\n" for n in sorted(_no_server)))


def pytest_unconfigure(config):
    for server in list(es._live):
        with contextlib.suppress(Exception):
            server.stop()
