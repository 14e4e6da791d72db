#!/bin/sh
# Prints the resident memory of push-gateway idle and loaded, for the
# "costs nothing when off" comparisons in BENCHMARKS.md: VmHWM, VmRSS,
# RssAnon and RssFile (kB) one second after start, then after 100 series
# pushed over the raw socket and 20 scrapes.
#
# Usage: scripts/rss-idle-loaded.sh BINARY [FLAG...]   (repeat runs and take
# the median: the figures move by a few tens of kB). Needs socat and curl;
# the daemon listens on 127.0.0.1:<free port> and a socket in a temporary
# directory. PAGE_CACHE=cold drops the binary from the page cache first (as
# after a reboot; how the file came into the page cache decides the size of
# its folios, and so how much of it a fault maps); the default leaves it.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 BINARY [FLAG...]" >&2; exit 2; }
bin=$1
shift
if [ "${PAGE_CACHE:-asis}" = cold ]; then
	sync
	dd if="$bin" iflag=nocache count=0 status=none
fi
dir=$(mktemp -d)
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
"$bin" --ingest.socket="$dir/p.sock" --web.listen-address=127.0.0.1:0 "$@" 2>"$dir/log" &
pid=$!
i=0
while ! grep -q 'address=' "$dir/log" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "no start-up line" >&2; cat "$dir/log" >&2; exit 1; }
	sleep 0.1
done
addr=$(sed -n 's/.*address=\([^ ]*\).*/\1/p' "$dir/log" | head -n 1)
sleep 1
show() {
	awk -v what="$1" '/^(VmHWM|VmRSS|RssAnon|RssFile):/ { v[$1] = $2 }
		END { printf "%-7s VmHWM %6d  VmRSS %6d  RssAnon %6d  RssFile %6d kB\n", what, v["VmHWM:"], v["VmRSS:"], v["RssAnon:"], v["RssFile:"] }' "/proc/$pid/status"
}
show idle
n=0
while [ $n -lt 100 ]; do
	printf 'rss_probe_series{instance="router-01.lan",job="edge",path="/x/%05d"} %d\n' "$n" "$n"
	n=$((n + 1))
done | socat -u - "UNIX-CONNECT:$dir/p.sock"
n=0
while [ $n -lt 20 ]; do
	curl -fsS -o /dev/null "http://$addr/metrics"
	n=$((n + 1))
done
show loaded
