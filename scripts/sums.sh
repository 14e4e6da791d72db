#!/bin/sh
# Writes DIST/SHA256SUMS over every binary and package in DIST (archives,
# .deb, .ipk), sorted by name, so that two builds of one commit can be
# compared with one cmp.
#
# Usage: scripts/sums.sh [DIST]
set -eu
DIST=${1:-${DIST:-dist}}
cd "$DIST"
find . -mindepth 1 -maxdepth 2 -type f \
	\( -name push-gateway -o -name '*.tar.gz' -o -name '*.deb' -o -name '*.ipk' \) |
	sed 's,^\./,,' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS.tmp
mv SHA256SUMS.tmp SHA256SUMS
