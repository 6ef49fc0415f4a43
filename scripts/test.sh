#!/usr/bin/env bash
# Install everything the test suite needs, then run it all. This is the README's test
# command and exactly what CI runs (.ci/run), so a green CI means it works from a clone.
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use for real: a Redis server (shared-cache tests), PostgreSQL
# (the task index), Chromium (the GraphiQL end-to-end test), Node.js (the GraphQL-over-HTTP
# audit) and promtool from Debian's prometheus package (the alert rules and the dashboard).
# Installed only when missing.
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# PostgreSQL (the task index's tests): Debian keeps initdb off PATH, in
# /usr/lib/postgresql/<version>/bin (tests/postgres_server.py finds it there).
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null ||
  need+=(postgresql)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "scripts/test.sh: please install ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

# The GraphQL-over-HTTP reference audit (tests/web/test_graphql_http_audit.py): npm's
# graphql-http, and graphql-sse's own client (tests/graph/test_subscription_sse.py), pinned,
# into .tools/node (git-ignored); installed only when those versions are not there yet.
GRAPHQL_HTTP_VERSION=1.23.1
GRAPHQL_SSE_VERSION=2.6.1
GRAPHQL_JS_VERSION=16.11.0
NODE_TOOLS=.tools/node
if ! grep -qs "\"version\": \"$GRAPHQL_HTTP_VERSION\"" "$NODE_TOOLS/node_modules/graphql-http/package.json" ||
  ! grep -qs "\"version\": \"$GRAPHQL_SSE_VERSION\"" "$NODE_TOOLS/node_modules/graphql-sse/package.json"; then
  mkdir -p "$NODE_TOOLS"
  npm install --prefix "$NODE_TOOLS" --save-exact --no-audit --no-fund --silent \
    "graphql-http@$GRAPHQL_HTTP_VERSION" "graphql-sse@$GRAPHQL_SSE_VERSION" "graphql@$GRAPHQL_JS_VERSION"
fi

# A fresh virtual environment from pyproject.toml, every time.
VENV="${TASK_GATEWAY_VENV:-.venv}"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -e ".[test]"

exec "$VENV/bin/python" -m pytest "$@"
