#!/usr/bin/env bash
# The full test suite: Debian test peers, type-check + compile, lint, then every dist/test/*.test.js.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-test-deps.sh
[ -d node_modules ] || npm ci
rm -rf dist/test  # no stale compiled tests from deleted sources
npx tsc -p tsconfig.json
npx eslint .
node --test --test-concurrency=2 dist/test/*.test.js
