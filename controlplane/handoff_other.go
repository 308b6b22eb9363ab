//go:build !linux

package controlplane

// freebind does nothing where there is no AF_XDP path (xdpReplies).
func freebind(fd int, v6 bool) error { return nil }
