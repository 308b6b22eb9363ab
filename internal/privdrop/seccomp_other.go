//go:build !linux

package privdrop

import "errors"

// ErrSeccompArch reports a system without seccomp.
var ErrSeccompArch = errors.New("server.seccomp: seccomp is Linux's")

// Seccomp fails: seccomp is Linux's.
func Seccomp() error { return ErrSeccompArch }
