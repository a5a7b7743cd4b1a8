#!/usr/bin/env bash
# What the browser and Node tests need: the npm packages of tests/js and of the TypeScript
# client example (`npm ci`, from the committed locks) and Debian's chromium. Installs what is missing (apt-get needs root); the
# tests fail, never skip, when something is still missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing Node.js…"
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi
# The test tools, and the TypeScript client example the tests run (docs/clients.md).
for project in tests/js docs/examples/typescript; do
  if [ ! -f "$project/node_modules/.package-lock.json" ] ||
     [ "$project/package-lock.json" -nt "$project/node_modules/.package-lock.json" ]; then
    echo "installing the npm packages of $project…"
    (cd "$project" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium…"
  apt-get update -qq && apt-get install -y -qq chromium
fi
