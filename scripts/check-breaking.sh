#!/usr/bin/env bash
# Fails if proto/ breaks the wire or JSON compatibility (buf's WIRE_JSON
# rules, set in buf.yaml) of any version of the API that was ever committed.
#
# chat.v1 is a released API: clients built against any earlier main must
# keep working. Comparing with every committed version, not only the last
# one, means a change cannot be slipped through in two steps (add, then
# remove), and needs no record of which commit "previous main" was: the
# previous main is among them. It needs the repository's history: a
# shallow clone fetches it first, and fails if it cannot, rather than being
# silently checked against nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "check-breaking: not a git clone: the committed versions of the API are needed to compare with" >&2
	exit 1
fi
if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
	echo "check-breaking: shallow clone; fetching the rest of the history to compare with every released API" >&2
	if ! git fetch --quiet --unshallow; then
		echo "check-breaking: could not fetch the history; run 'git fetch --unshallow'" >&2
		exit 1
	fi
fi
revs=$(git log --format=%H -- proto/)
if [ -z "$revs" ]; then
	echo "check-breaking: no committed version of proto/ to compare with" >&2
	exit 1
fi
n=0
for rev in $revs; do
	if ! go tool -modfile=tools/go.mod buf breaking --against ".git#ref=$rev"; then
		echo "check-breaking: proto/ breaks the API as committed in $(git log -1 --format='%h (%s)' "$rev")" >&2
		exit 1
	fi
	n=$((n + 1))
done
echo "proto/ is compatible with all $n committed versions of the API"
