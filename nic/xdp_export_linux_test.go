package nic

import (
	"net/netip"
	"testing"
)

// This file lends the namespace helpers of the AF_XDP tests to the external
// test package nic_test. Its tests run the data plane worker over a real
// XDPPort, and dataplane imports nic, so only an external test package can
// import both.

// TestVeth is a vethNet seen from package nic_test.
type TestVeth struct{ v *vethNet }

// NewTestVeth creates the two namespaces and their two-queue veth pair; see
// vethNet.
func NewTestVeth(t testing.TB) TestVeth { return TestVeth{newVethNet(t)} }

// OpenXDP opens cfg on the server end; see vethNet.openXDP.
func (tv TestVeth) OpenXDP(t testing.TB, cfg XDPConfig) (*XDP, error) { return tv.v.openXDP(t, cfg) }

// ClientFDs returns count UDP sockets in the client namespace connected to
// server, each with a 1 s receive timeout; see vethNet.newClients.
func (tv TestVeth) ClientFDs(t testing.TB, server netip.AddrPort, count int) []int {
	return tv.v.newClients(t, server, count).fds
}
