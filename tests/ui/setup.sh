#!/usr/bin/env bash
# What the browser tests need and reuse when present: Debian's chromium (driven headless by
# playwright from the pinned test venv, tests/requirements.txt; no browser download).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "tests/ui/setup.sh: chromium is missing; install it (apt-get install chromium)" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
