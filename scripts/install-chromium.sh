#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests, if it is missing. The
# tests drive /usr/bin/chromium; browser downloads of other tools do not
# work here, so Debian's package is the one used.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
/usr/bin/chromium --version
