#!/bin/sh
# socat-bridge.sh: forward a TCP port to push-gateway's Unix socket, so that
# Prometheus Pushgateway clients (client_golang's push package, the Python
# client's push_to_gateway, curl, ...) work unchanged against
# http://ADDRESS:PORT. Only the socket's HTTP side is reachable this way:
# the Pushgateway API (PUT, POST, DELETE /metrics/job/...) and GET /metrics.
#
# Anyone who can reach the port can push and delete metrics: keep the default
# address (127.0.0.1) unless the network in front of it is trusted.
#
# The script execs socat, so a service manager sees and signals socat itself.

set -eu

prog=${0##*/}

usage() {
	cat <<EOF
usage: $prog [-a ADDRESS] [-p PORT] [-s SOCKET] [-m MAX]

Forward TCP ADDRESS:PORT to push-gateway's Unix socket with socat.

  -a ADDRESS  address to listen on (\$PUSH_GATEWAY_BRIDGE_ADDRESS,
              default 127.0.0.1; 0.0.0.0 or :: for every interface)
  -p PORT     TCP port to listen on (\$PUSH_GATEWAY_BRIDGE_PORT, default 9092)
  -s SOCKET   push-gateway's socket (\$PUSH_GATEWAY_INGEST_SOCKET,
              default /run/push-gateway.sock)
  -m MAX      connections served at once, 0 for no limit
              (\$PUSH_GATEWAY_BRIDGE_MAX_CONNECTIONS, default 64)
  -h          show this help
EOF
}

die() {
	printf '%s: %s\n' "$prog" "$1" >&2
	exit "${2:-2}"
}

address=${PUSH_GATEWAY_BRIDGE_ADDRESS:-127.0.0.1}
port=${PUSH_GATEWAY_BRIDGE_PORT:-9092}
socket=${PUSH_GATEWAY_INGEST_SOCKET:-/run/push-gateway.sock}
max=${PUSH_GATEWAY_BRIDGE_MAX_CONNECTIONS:-64}

while getopts a:p:s:m:h opt; do
	case $opt in
	a) address=$OPTARG ;;
	p) port=$OPTARG ;;
	s) socket=$OPTARG ;;
	m) max=$OPTARG ;;
	h)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || die "unexpected argument: $1 (see -h)"

is_number() {
	case $1 in
	'' | *[!0-9]*) return 1 ;;
	esac
	[ "${#1}" -le 5 ]
}

if ! is_number "$port" || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
	die "port: '$port' is not a TCP port (1-65535)"
fi
is_number "$max" || die "max connections: '$max' is not a whole number"
[ -n "$address" ] || die "address: empty"
[ -n "$socket" ] || die "socket: empty path"
# socat reads commas (and, in the socket path, colons) as separators.
case $address in
*,*) die "address: '$address' holds a comma" ;;
esac
case $socket in
*,* | *:*) die "socket: '$socket' holds a comma or a colon, which socat cannot take" ;;
esac

command -v socat >/dev/null 2>&1 || die "socat is not installed" 1

# An IPv6 address needs TCP6-LISTEN and brackets.
case $address in
*:*)
	listen="TCP6-LISTEN:$port,bind=[$address]"
	;;
*)
	listen="TCP4-LISTEN:$port,bind=$address"
	;;
esac
listen="$listen,fork,reuseaddr"
[ "$max" -eq 0 ] || listen="$listen,max-children=$max"

[ -S "$socket" ] ||
	printf '%s: warning: %s is not a socket (yet); connections fail until push-gateway listens there\n' "$prog" "$socket" >&2

exec socat "$listen" "UNIX-CONNECT:$socket"
