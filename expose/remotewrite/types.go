package remotewrite

import "github.com/push-gateway/push-gateway/expose/remotewrite/httpc"

// Header and Response are httpc's, so that *httpc.Client is a Poster.
type (
	Header   = httpc.Header
	Response = httpc.Response
)
