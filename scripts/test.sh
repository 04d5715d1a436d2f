#!/usr/bin/env bash
# The full test suite: Debian test peers, type-check + compile (and man pages), lint, then every dist/test/*.test.js.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-test-deps.sh
[ -d node_modules ] || npm ci
rm -rf dist/test  # no stale compiled tests from deleted sources
npm run build  # tsc, then the man pages (a test checks they are current)
npx eslint .
node --test --test-concurrency=2 dist/test/*.test.js
