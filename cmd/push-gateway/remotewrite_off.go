//go:build noremotewrite

package main

// Built with the noremotewrite tag: no --remote-write.* flags and none of
// its code, crypto/tls included, for the smallest devices (BENCHMARKS.md,
// "remote_write").

import (
	"context"
	"log/slog"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/expose"
)

type remoteWriteFlags struct{}

func (*remoteWriteFlags) on() bool { return false }

func (c *CLI) validateRemoteWrite() error { return nil }

type remoteWrite struct{}

func newRemoteWrite(*CLI, *cache.Cache, *slog.Logger) (*remoteWrite, error) { return nil, nil }

func (*remoteWrite) close()                         {}
func (*remoteWrite) run(ctx, drain context.Context) {}
func (*remoteWrite) metrics() []expose.SelfFamily   { return nil }
func (*remoteWrite) status() []expose.StatusSection { return nil }
