#!/usr/bin/env bash
# Regenerates the code of proto/ into a scratch directory and compares it
# with the committed gen/ (Go) and web/src/gen/ (the page's TypeScript), so
# that neither can drift from proto/. The TypeScript plugin comes from
# web/node_modules: run `npm ci` in web/ first (make check-gen does).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go tool -modfile=tools/go.mod buf generate -o "$tmp"
go tool -modfile=tools/go.mod buf generate --template buf.gen.web.yaml -o "$tmp"
status=0
if ! diff -r "$tmp/gen" gen; then
	echo "gen/ does not match proto/: run 'make generate' and commit the result" >&2
	status=1
fi
if ! diff -r "$tmp/web/src/gen" web/src/gen; then
	echo "web/src/gen/ does not match proto/: run 'make generate' and commit the result" >&2
	status=1
fi
[ "$status" -eq 0 ] && echo "gen/ and web/src/gen/ match proto/"
exit "$status"
