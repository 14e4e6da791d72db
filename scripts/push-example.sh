#!/bin/sh
# Push a few metrics into push-gateway's socket from the shell, then scrape
# them back. Usage: scripts/push-example.sh [SOCKET] [ADDRESS]
set -eu
sock=${1:-${PUSH_GATEWAY_INGEST_SOCKET:-./push-gateway.sock}}
addr=${2:-localhost:9091}

# One connection, several lines; the last may come without a newline.
printf '%s\n' \
	'# HELP backup_last_success_timestamp_seconds When the nightly backup last succeeded.' \
	'# TYPE backup_last_success_timestamp_seconds gauge' \
	"backup_last_success_timestamp_seconds{target=\"nas\"} $(date +%s)" \
	'# TYPE backup_files_total counter' \
	'backup_files_total{target="nas"} 1234' |
	if command -v socat >/dev/null; then
		socat - "UNIX-CONNECT:$sock"
	else
		nc -U -q 1 "$sock"
	fi

curl -fsS "http://$addr/metrics" | grep '^backup_'
