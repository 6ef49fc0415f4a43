#!/usr/bin/env bash
# Install everything the test suite needs, then run it all. This is the README's test
# command and exactly what CI runs (.ci/run), so a green CI means it works from a clone.
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use for real: a Redis server (shared-cache tests) and
# Chromium (the GraphiQL end-to-end test). Installed only when missing.
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "scripts/test.sh: please install ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

# A fresh virtual environment from pyproject.toml, every time.
VENV="${TASK_GATEWAY_VENV:-.venv}"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -e ".[test]"

exec "$VENV/bin/python" -m pytest "$@"
