//go:build !linux

package pageout

// Release does nothing outside Linux.
func Release() {}
