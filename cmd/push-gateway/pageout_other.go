//go:build !linux

package main

// releaseBinary does nothing outside Linux.
func releaseBinary() {}
