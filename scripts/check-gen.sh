#!/usr/bin/env bash
# Regenerates the code of proto/ into a scratch directory and compares it
# with the committed gen/, so that gen/ can never drift from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go tool buf generate -o "$tmp"
if ! diff -r "$tmp/gen" gen; then
	echo "gen/ does not match proto/: run 'make generate' and commit the result" >&2
	exit 1
fi
echo "gen/ matches proto/"
