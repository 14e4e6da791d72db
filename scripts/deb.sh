#!/bin/sh
# Builds a Debian package of push-gateway from a binary already built for the
# package's architecture, with dpkg-deb alone (no debhelper, no source
# package): the Go build is `make cross`'s.
#
# Usage: scripts/deb.sh BINARY DEBARCH VERSION OUTDIR   (from the top of the tree)
#
#   BINARY   push-gateway built for DEBARCH (amd64, arm64, armhf, riscv64, ...)
#   VERSION  the upstream version; the package is VERSION-1
#   OUTDIR   where push-gateway_VERSION-1_DEBARCH.deb is written
#
# Environment: SOURCE_DATE_EPOCH (file times and the changelog date; default:
# the last commit's), REVISION (named in the changelog), MAINTAINER,
# DEB_COMPRESS (dpkg-deb -Z: xz, the default, or gzip, faster; the tests use it).
#
# The package installs the binary in /usr/bin, the units in
# /lib/systemd/system and /etc/default/push-gateway (a conffile). Its postinst
# creates the system user and group push-gateway and enables and starts
# nothing: `systemctl enable --now push-gateway.socket push-gateway.service`
# is the administrator's call.
set -eu

[ $# -eq 4 ] || { echo "usage: $0 BINARY DEBARCH VERSION OUTDIR" >&2; exit 2; }
binary=$1 arch=$2 upstream=$3 outdir=$4
version=$upstream-1
pkg=push-gateway
MAINTAINER=${MAINTAINER:-push-gateway maintainers <maintainers@push-gateway.org>}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH # dpkg-deb clamps file times to it
[ -f "$binary" ] || { echo "$0: $binary: no such file" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
doc=$root/usr/share/doc/$pkg
umask 022
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
	"$root/etc/default" "$doc" "$root/usr/share/man/man1"

install -m 0755 "$binary" "$root/usr/bin/push-gateway"
install -m 0644 scripts/systemd/push-gateway.service scripts/systemd/push-gateway.socket \
	"$root/lib/systemd/system/"
install -m 0644 scripts/systemd/push-gateway.default "$root/etc/default/push-gateway"

date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
cat >"$work/changelog" <<EOF
$pkg ($version) unstable; urgency=medium

  * Upstream version $upstream, packaged by make deb.
  * Revision $REVISION.

 -- $MAINTAINER  $date
EOF
gzip -9n <"$work/changelog" >"$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"

if [ -f LICENSE ]; then
	license="See-LICENSE"
	license_text=$(sed -e 's/^[[:space:]]*$/./' -e 's/^/ /' LICENSE)
else
	license="not-yet-chosen"
	license_text=" The upstream tree carries no LICENSE file yet. Until it does, the
 authors keep all rights; ask them before you redistribute this package."
fi
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: push-gateway
Source: https://github.com/push-gateway/push-gateway

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) the push-gateway authors
License: $license

License: $license
$license_text
EOF
chmod 0644 "$doc/copyright"

# A short manual page; --help is the complete and current reference.
cat >"$work/push-gateway.1" <<'EOF'
.TH PUSH-GATEWAY 1 "" "push-gateway" "User Commands"
.SH NAME
push-gateway \- keep pushed Prometheus metrics for a TTL and serve them for scraping
.SH SYNOPSIS
.B push-gateway
.RI [ flags ]
.SH DESCRIPTION
.B push-gateway
keeps the metrics that local processes push into a Unix socket, each series
for a TTL and all of them within a fixed memory budget, and serves them to
Prometheus on HTTP
.IR /metrics .
Pushes are Prometheus text format lines on a raw stream, or the Prometheus
Pushgateway HTTP API over the same socket.
.PP
Every flag can also be set in the environment as
.B PUSH_GATEWAY_
followed by the flag name in upper case, dots and dashes turned into
underscores (\fB\-\-cache.ttl\fR is \fBPUSH_GATEWAY_CACHE_TTL\fR).
.B push-gateway \-\-help
lists every flag with its default.
.SH FILES
.TP
.I /etc/default/push-gateway
environment of push-gateway.service
.TP
.I /run/push-gateway.sock
the push socket, held by push-gateway.socket
.SH SEE ALSO
.BR systemctl (1),
.BR prometheus (1)
EOF
gzip -9n <"$work/push-gateway.1" >"$root/usr/share/man/man1/push-gateway.1.gz"
chmod 0644 "$root/usr/share/man/man1/push-gateway.1.gz"

# Overrides for lintian, each with its reason.
mkdir -p "$root/usr/share/lintian/overrides"
cat >"$root/usr/share/lintian/overrides/$pkg" <<'EOF'
# A Go binary built with CGO_ENABLED=0: static by design, so that one binary
# serves every distribution and libc. lintian exempts Go binaries when it sees
# the source package's golang-go build dependency; this package has no source
# package.
push-gateway: statically-linked-binary [usr/bin/push-gateway]
# Built outside the Debian archive: there is no ITP bug for the first entry
# to close.
push-gateway: initial-upload-closes-no-bugs [usr/share/doc/push-gateway/changelog.Debian.gz:1]
EOF
chmod 0644 "$root/usr/share/lintian/overrides/$pkg"

cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	# The daemon's user, and the group whose members may push (SocketGroup=).
	if ! getent passwd push-gateway >/dev/null; then
		adduser --system --group --quiet --no-create-home --home /nonexistent push-gateway
	fi
	# Make new or changed units known; enable and start nothing.
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		# An upgrade restarts a daemon that was running; the socket unit
		# keeps the socket open meanwhile.
		if [ -n "$2" ]; then
			deb-systemd-invoke try-restart push-gateway.service >/dev/null || true
		fi
	fi
fi
exit 0
EOF
cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop push-gateway.service push-gateway.socket >/dev/null || true
fi
exit 0
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
	# What `systemctl enable` and `systemctl edit` left in /etc.
	rm -f /etc/systemd/system/sockets.target.wants/push-gateway.socket \
		/etc/systemd/system/multi-user.target.wants/push-gateway.service
	rm -rf /etc/systemd/system/push-gateway.service.d /etc/systemd/system/push-gateway.socket.d
	if getent passwd push-gateway >/dev/null && command -v deluser >/dev/null; then
		deluser --system --quiet push-gateway 2>/dev/null || true
	fi
	if getent group push-gateway >/dev/null && command -v delgroup >/dev/null; then
		delgroup --system --quiet push-gateway 2>/dev/null || true
	fi
fi
if [ "$1" = remove ] || [ "$1" = purge ]; then
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
echo /etc/default/push-gateway >"$root/DEBIAN/conffiles"

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's,^\./,,' |
	LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
# As dpkg-gencontrol counts it: each file's size rounded up to KiB, 1 KiB for
# each directory. (du would count the build machine's disk blocks.)
installed_size=$(cd "$root" && find . -path ./DEBIAN -prune -o \( -type f -printf '%s\n' \) -o \( -type d -printf 'd\n' \) |
	awk '$1 == "d" { kib += 1; next } { kib += int(($1 + 1023) / 1024) } END { print kib }')
cat >"$root/DEBIAN/control" <<EOF
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $installed_size
Depends: adduser
Section: net
Priority: optional
Homepage: https://github.com/push-gateway/push-gateway
Description: Prometheus push gateway for small devices, with expiry
 push-gateway keeps the metrics that local processes push into a Unix
 socket, each series for a TTL and all of them within a fixed memory
 budget, and serves them to Prometheus on HTTP /metrics. Pushes are
 Prometheus text format lines on a raw stream, JSON events, or the
 Prometheus Pushgateway HTTP API over the same socket.
 .
 It is meant for edge and embedded Linux: one static binary of a few MiB
 that idles in about 10 MiB of memory. This package ships systemd units
 (the socket unit holds the push socket) and enables none of them.
EOF
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$outdir"
out=$outdir/${pkg}_${version}_$arch.deb
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$root" "$out" >/dev/null
echo "$out"
