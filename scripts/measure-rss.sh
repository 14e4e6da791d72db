#!/bin/sh
# Measures push-gateway's resident memory with a full cache that Prometheus
# scrapes, to size MemoryMax (systemd) or the device's RAM for a given
# --cache.size. Fills the cache with plain series of 80 bytes of text (more
# than fit), scrapes /metrics 20 times, and prints the cache's series count
# and the process's VmRSS and VmHWM (peak) from /proc.
#
# Usage: scripts/measure-rss.sh BINARY SIZE...   e.g. scripts/measure-rss.sh ./push-gateway 10KiB 1MiB 2MiB
# Environment: GOMEMLIMIT is passed on (try the unit's 24MiB). Needs socat
# and curl; uses 127.0.0.1:19777 and a socket in a temporary directory.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 BINARY SIZE..." >&2; exit 2; }
bin=$1
shift
dir=$(mktemp -d)
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
addr=127.0.0.1:19777

kib() { # SIZE in KiB, for the number of series to push
	case $1 in
	*GiB) echo $((${1%GiB} * 1048576)) ;;
	*MiB) echo $((${1%MiB} * 1024)) ;;
	*KiB) echo "${1%KiB}" ;;
	*) echo $((${1%B} / 1024 + 1)) ;;
	esac
}

printf '%-8s %-10s %8s %12s %12s\n' size GOMEMLIMIT series VmRSS_kB VmHWM_kB
for size in "$@"; do
	"$bin" --ingest.socket="$dir/p.sock" --web.listen-address="$addr" \
		--cache.size="$size" --cache.ttl=1h --log.level=warn &
	pid=$!
	i=0
	until [ -S "$dir/p.sock" ] && curl -fs "http://$addr/-/ready" >/dev/null; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || { echo "$0: the daemon did not start" >&2; exit 1; }
		sleep 0.1
	done
	# ~100 bytes of budget a series: push 12 for every KiB, more than fit.
	awk -v n="$(($(kib "$size") * 12))" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "edge_device_metric_%03d{instance=\"router-01.lan\",job=\"pushgateway\",path=\"/x/%06d\"} %d\n", i % 1000, i, i
	}' | socat -u - "UNIX-CONNECT:$dir/p.sock"
	sleep 1
	i=0
	while [ "$i" -lt 20 ]; do
		curl -fs "http://$addr/metrics" >/dev/null
		i=$((i + 1))
	done
	series=$(curl -fs "http://$addr/metrics" | awk '$1 == "push_gateway_cache_series" { print $2 }')
	rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status")
	hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
	printf '%-8s %-10s %8s %12s %12s\n' "$size" "${GOMEMLIMIT:-off}" "$series" "$rss" "$hwm"
	kill "$pid"
	wait "$pid" || true
	pid=
done
