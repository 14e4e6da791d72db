#!/bin/sh
# Builds an OpenWrt package (.ipk) of push-gateway without the OpenWrt SDK,
# from a binary already built for the target (`make cross`). The result is
# what the SDK's ipkg-build makes: a gzipped tar of ./debian-binary,
# ./data.tar.gz and ./control.tar.gz, in that order, owned by 0:0, with the
# SDK's standard postinst and prerm (they create the user named in
# Require-User, then enable and start the init script; and the reverse).
#
# Usage: scripts/ipk.sh BINARY OPENWRT_ARCH VERSION OUTDIR   (from the top of the tree)
#
#   BINARY        push-gateway built for OPENWRT_ARCH: aarch64_generic (arm64),
#                 arm_cortex-a7_neon-vfpv4 (GOARM=7), mips_24kc and
#                 mipsel_24kc (GOMIPS=softfloat)
#   VERSION       the upstream version; the package is VERSION-1
#   OUTDIR        where push-gateway_VERSION-1_OPENWRT_ARCH.ipk is written
#
# Environment: SOURCE_DATE_EPOCH (file times; default: the last commit's),
# MAINTAINER.
set -eu

[ $# -eq 4 ] || { echo "usage: $0 BINARY OPENWRT_ARCH VERSION OUTDIR" >&2; exit 2; }
binary=$1 arch=$2 upstream=$3 outdir=$4
version=$upstream-1
pkg=push-gateway
MAINTAINER=${MAINTAINER:-push-gateway maintainers <maintainers@push-gateway.org>}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
[ -f "$binary" ] || { echo "$0: $binary: no such file" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data=$work/data
control=$work/control
umask 022
mkdir -p "$data/usr/bin" "$data/etc/init.d" "$data/etc/config" "$control"
install -m 0755 "$binary" "$data/usr/bin/push-gateway"
install -m 0755 scripts/openwrt/push-gateway.init "$data/etc/init.d/push-gateway"
install -m 0600 scripts/openwrt/push-gateway.config "$data/etc/config/push-gateway"

# Reproducible tar: sorted names, fixed times, numeric root ownership.
mktar() { # DIR [NAME...]: a gzipped tar of NAMEs (default .) in DIR on stdout
	dir=$1
	shift
	[ $# -gt 0 ] || set -- .
	tar --format=gnu --sort=name --mtime="@$SOURCE_DATE_EPOCH" \
		--owner=0 --group=0 --numeric-owner -C "$dir" -cf - "$@" | gzip -9n
}

mktar "$data" >"$work/data.tar.gz"
# As ipkg-build: the size of the uncompressed data tar, in bytes.
installed_size=$(gzip -dc "$work/data.tar.gz" | wc -c | tr -d ' ')

# Depends: libc is what every package built by the SDK declares; the binary
# is static and needs nothing but the kernel, procd and /etc/rc.common.
cat >"$control/control" <<EOF
Package: $pkg
Version: $version
Depends: libc
Source: scripts/openwrt
SourceName: $pkg
Section: utils
URL: https://github.com/push-gateway/push-gateway
Require-User: push-gateway:push-gateway
Maintainer: $MAINTAINER
Architecture: $arch
Installed-Size: $installed_size
Description:  Keeps the metrics that local processes push into a Unix socket, each
 series for a TTL and all of them within a fixed memory budget, and serves
 them to Prometheus on HTTP /metrics. Configure in /etc/config/push-gateway.
EOF
echo /etc/config/push-gateway >"$control/conffiles"
# The SDK's standard maintainer scripts (include/package-pack.mk).
cat >"$control/postinst" <<'EOF'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
EOF
cat >"$control/prerm" <<'EOF'
#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
EOF
chmod 0644 "$control/control" "$control/conffiles"
chmod 0755 "$control/postinst" "$control/prerm"
mktar "$control" >"$work/control.tar.gz"

echo 2.0 >"$work/debian-binary"
mkdir -p "$outdir"
out=$outdir/${pkg}_${version}_$arch.ipk
mktar "$work" ./debian-binary ./data.tar.gz ./control.tar.gz >"$out"
echo "$out"
