"""Judges a run of MLflow's own REST tests (tests/upstream/run) against known_failures.txt.

    check.py OUT_DIR                  exit 1 if a test failed that known_failures.txt does not list
    check.py OUT_DIR --docs FILE      also rewrite FILE's block between the upstream markers
                                      (pass count, runtime, command, each failing test and why)

known_failures.txt holds one pytest node id a line, then `# reason`. A listed test that now
passes is reported (remove it from the list) but is not an error; a failing test that is not
listed is a regression and fails the run, so CI keeps every test that passes today.
"""

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- upstream:begin (written by tests/upstream/run --update-docs) -->"
END = "<!-- upstream:end -->"


def read_list(path):
    """Node ids (and their reasons) of a file of `id  # reason` lines."""
    entries = {}
    if not path.exists():
        return entries
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        nodeid, _, reason = line.partition("#")
        entries[nodeid.strip()] = reason.strip()
    return entries


def lines(path):
    return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def runtime(out_dir):
    text = (out_dir / "run-info.txt").read_text() if (out_dir / "run-info.txt").exists() else ""
    m = re.search(r"^runtime: (\d+)s", text, re.M)
    return int(m.group(1)) if m else None


def docs_block(out_dir, failed, known, command):
    summary = (out_dir / "summary.txt").read_text().strip()
    info = (out_dir / "run-info.txt").read_text() if (out_dir / "run-info.txt").exists() else ""
    tests_line = next((l for l in info.splitlines() if l.startswith("tests: ")), "tests: ?")
    client_line = next((l for l in info.splitlines() if l.startswith("client: ")), "client: ?")
    started = next((l for l in info.splitlines() if l.startswith("started: ")), "started: ?")
    seconds = runtime(out_dir)
    out = [
        BEGIN,
        "",
        f"`{summary}`",
        "",
        f"- runtime: {seconds} s ({seconds / 60:.1f} min)" if seconds else "- runtime: unknown",
        f"- command: `{command}`",
        # The git directory is a local path: only the revision goes into the docs.
        "- tests: MLflow's repository @ " + tests_line.split(" @ ", 1)[-1],
        f"- {client_line}, {started.replace('started: ', 'run at ')}",
        "",
        f"Still failing ({len(failed)}), with the reason from tests/upstream/known_failures.txt:",
        "",
        "| test | why |",
        "|---|---|",
    ]
    for nodeid in failed:
        reason = known.get(nodeid, "not yet explained (a regression until listed)")
        out.append(f"| `{nodeid}` | {reason} |")
    out += ["", END]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--docs", type=Path)
    ap.add_argument("--command", default="tests/upstream/run")
    ap.add_argument("--known", type=Path, default=HERE / "known_failures.txt")
    args = ap.parse_args()

    if not (args.out_dir / "summary.txt").exists():
        print("tests/upstream: the run wrote no summary.txt", file=sys.stderr)
        return 1
    known = read_list(args.known)
    failed = lines(args.out_dir / "failed.txt")
    passed = set(lines(args.out_dir / "passed.txt"))
    regressions = [n for n in failed if n not in known]
    now_passing = sorted(n for n in known if n in passed)

    for nodeid in now_passing:
        print(f"tests/upstream: now passes, remove it from known_failures.txt: {nodeid}")
    for nodeid in regressions:
        print(f"tests/upstream: REGRESSION (fails, not in known_failures.txt): {nodeid}")

    if args.docs:
        text = args.docs.read_text()
        if BEGIN not in text or END not in text:
            print(f"tests/upstream: {args.docs} has no upstream markers", file=sys.stderr)
            return 1
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        args.docs.write_text(head + docs_block(args.out_dir, failed, known, args.command) + tail)
        print(f"tests/upstream: wrote {args.docs}")

    print((args.out_dir / "summary.txt").read_text().strip() + f" ({runtime(args.out_dir)} s)")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
