package remotewrite

import "time"

// Header is one request header field.
type Header struct{ Name, Value string }

// Response is the receiver's answer.
type Response struct {
	Status     int
	RetryAfter time.Duration
	Body       []byte
}
