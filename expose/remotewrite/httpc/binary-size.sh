#!/bin/sh
# Prints what the remote_write HTTP client costs in the stripped daemon
# binary: cmd/push-gateway as committed (base), plus a probe that sends one
# request with this package (httpc, with TLS), the same built with the tag
# httpc_notls (plain http:// only), and with net/http's client instead.
# Usage, from the repository root: expose/remotewrite/httpc/binary-size.sh [GOARCH[:GOARM]]...
set -eu
root=$(pwd)
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
git -C "$root" archive HEAD | tar -x -C "$tmp"
cd "$tmp"

probe() { # $1 = import line, $2 = statement using it with the URL u
	cat >cmd/push-gateway/zz_probe.go <<EOG
package main

import (
	"context"
	"net/url"
	"os"

	$1
)

var _ = context.Background
var _ = url.Parse

func init() {
	if u := os.Getenv("SIZE_PROBE_URL"); u != "" {
		$2
	}
}
EOG
}

build() { # $1 = name, then go build flags
	name=$1
	shift
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' "$@" -o "$tmp/bin" ./cmd/push-gateway
	size=$(wc -c <"$tmp/bin")
	[ "$base" -eq 0 ] && base=$size
	printf '%-8s %-12s %9d B  %+9d B\n' "$arch" "$name" "$size" "$((size - base))"
}

printf '%-8s %-12s %11s  %11s\n' GOARCH variant size "vs base"
for arch in "${@:-amd64}"; do
	GOARCH=${arch%%:*}
	export GOARCH
	case $arch in *:*) GOARM=${arch#*:} && export GOARM ;; *) unset GOARM ;; esac
	rm -f cmd/push-gateway/zz_probe.go
	base=0
	build base
	probe '"github.com/push-gateway/push-gateway/expose/remotewrite/httpc"' \
		'pu, _ := url.Parse(u); if c, err := httpc.New(httpc.Config{URL: pu}); err == nil { c.Do(context.Background(), "POST", nil, nil) }'
	build httpc
	build httpc-notls -tags httpc_notls
	probe '"net/http"' 'http.Post(u, "application/x-protobuf", nil)'
	build net/http
done
