// Package pageout gives back the pages of the daemon's own binary that it
// has mapped but does not use. A Go binary is mapped whole, and on many
// kernels most of it becomes resident at start whether or not that code
// ever runs: TLS for a remote_write that is off, kong's help text, the
// parsers of flags not given, every package's init. Paged out, those pages
// cost nothing until they are used; the ones in use fault back in.
//
// Importing the package is the first call: its init runs as soon as the
// package syscall has, before most other packages' inits (Go initializes a
// package once its imports are, the first by import path first; about a
// dozen small ones of the standard library come before), which is why it
// imports nothing else. On amd64, a cold page cache and this VM's
// 6.18 kernel, the binary's resident file pages at that point are 3.2 MB;
// at main's entry, without it, 5.2 to 5.9 MB.
package pageout
