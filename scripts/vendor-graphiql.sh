#!/usr/bin/env bash
# Refresh the GraphiQL assets CareBill serves itself (web/static/graphiql/), so that GraphiQL
# works without internet: the UMD builds of graphiql (which bundles the graphql-ws client its
# subscriptions use), react and react-dom, each with its licence, from the npm registry.
# Usage: scripts/vendor-graphiql.sh [graphiql-version react-version]
set -euo pipefail
GRAPHIQL=${1:-3.8.3}   # the last major with a UMD build (4 and later are ES modules only)
REACT=${2:-18.2.0}     # GraphiQL 3's peer (React 19 has no UMD build)
cd "$(dirname "$0")/.."
target=web/static/graphiql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
for spec in "graphiql $GRAPHIQL" "react $REACT" "react-dom $REACT"; do
  read -r package version <<<"$spec"
  mkdir -p "$work/$package"
  tar xzf "$work/$package-$version.tgz" -C "$work/$package" --strip-components=1
done

rm -rf "$target" && mkdir -p "$target"
cp "$work/graphiql/graphiql.min.js" "$work/graphiql/graphiql.min.css" "$target/"
cp "$work/react/umd/react.production.min.js" "$target/"
cp "$work/react-dom/umd/react-dom.production.min.js" "$target/"
for package in graphiql react react-dom; do
  cp "$work/$package/LICENSE" "$target/LICENSE-$package"
done
printf 'graphiql %s\nreact %s\nreact-dom %s\n' "$GRAPHIQL" "$REACT" "$REACT" > "$target/VERSIONS"
echo "GraphiQL $GRAPHIQL and React $REACT vendored into $target"
