#!/usr/bin/env bash
# Type-checks the page's TypeScript and rebuilds its bundle from scratch,
# then checks that the bundle is byte for byte the committed
# web/dist/app.js, which chatd embeds: what runs is what the source says.
set -euo pipefail
cd "$(dirname "$0")/../web"
npm run --silent typecheck
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm run --silent build -- --outfile="$tmp/app.js" --log-level=warning
if ! cmp -s "$tmp/app.js" dist/app.js; then
	echo "web/dist/app.js does not match a clean build of web/src: run 'make web' and commit the result" >&2
	exit 1
fi
echo "web/dist/app.js matches web/src"
