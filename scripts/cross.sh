#!/bin/sh
# Cross-builds push-gateway: one static, stripped, version-stamped binary per
# target, each in DIST/push-gateway-VERSION.TARGET/ with README.md, LICENSE
# (if the tree has one) and the systemd files, and a reproducible
# DIST/push-gateway-VERSION.TARGET.tar.gz of that directory.
#
# Usage: scripts/cross.sh TARGET...   (run from the top of the tree; `make
# cross` passes every target and the variables below)
#
# TARGET is linux-amd64, linux-arm64, linux-armv7, linux-armv6, linux-mips,
# linux-mipsle or linux-riscv64 (MIPS builds are GOMIPS=softfloat: most
# routers have no FPU).
#
# Environment: VERSION, LDFLAGS and TAGS (the Makefile's), GO (default go),
# DIST (default dist), SOURCE_DATE_EPOCH (the archives' file times; default:
# the last commit's).
set -eu

GO=${GO:-go}
DIST=${DIST:-dist}
TAGS=${TAGS:-}
: "${VERSION:?VERSION is not set}"
: "${LDFLAGS:?LDFLAGS is not set}"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
[ $# -gt 0 ] || { echo "usage: $0 TARGET..." >&2; exit 2; }

mkdir -p "$DIST"
for target in "$@"; do
	goarm="" gomips=""
	case $target in
	linux-amd64) goarch=amd64 ;;
	linux-arm64) goarch=arm64 ;;
	linux-armv7) goarch=arm goarm=7 ;;
	linux-armv6) goarch=arm goarm=6 ;;
	linux-mips) goarch=mips gomips=softfloat ;;
	linux-mipsle) goarch=mipsle gomips=softfloat ;;
	linux-riscv64) goarch=riscv64 ;;
	*) echo "$0: unknown target $target" >&2; exit 2 ;;
	esac
	name=push-gateway-$VERSION.$target
	dir=$DIST/$name
	rm -rf "$dir" "$dir.tar.gz"
	mkdir -p "$dir/systemd"
	echo ">> $target"
	# -trimpath and -buildvcs=false: the binary depends on the source and the
	# stamped values only, not on where the tree is or whether it is clean.
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm GOMIPS=$gomips \
		"$GO" build -trimpath -buildvcs=false -tags "$TAGS" -ldflags "$LDFLAGS" \
		-o "$dir/push-gateway" ./cmd/push-gateway
	cp README.md "$dir/"
	[ ! -f LICENSE ] || cp LICENSE "$dir/"
	cp scripts/systemd/push-gateway.service scripts/systemd/push-gateway.socket \
		scripts/systemd/push-gateway.default "$dir/systemd/"
	# Modes do not depend on the umask of whoever builds.
	find "$dir" -type d -exec chmod 0755 {} +
	find "$dir" -type f -exec chmod 0644 {} +
	chmod 0755 "$dir/push-gateway"
	tar --format=gnu --sort=name --mtime="@$SOURCE_DATE_EPOCH" \
		--owner=0 --group=0 --numeric-owner \
		-C "$DIST" -cf - "$name" | gzip -9n >"$dir.tar.gz"
done
