// Package netns builds the isolated network that ringdns's AF_XDP tests and
// benchmark harness run on: two network namespaces, a server's and a
// client's, joined by a veth pair with a chosen number of RX and TX queues.
// The server's end holds 198.18.0.1/24 and fd53::1/64, the client's
// 198.18.0.2/24 and fd53::2/64 (the benchmarking range of RFC 2544 and a
// unique local prefix), so nothing on either side can reach any other
// network, and nothing is created in the caller's own namespace.
//
// Besides the pair itself (NewPair, Pair.Close), the package runs Go code on
// a thread switched into a namespace (Do), wraps a command line to run in one
// (Command, Exec), sends ICMP echo requests (Ping), pins neighbour entries
// (Pair.PinNeighbours) and reports the kernel's counters (Pair.Counters).
//
// Package netns does not import testing, since the benchmark harness, a
// program, uses it too; package netnstest adapts it to tests (skipping with
// a reason, failing under CI=true, deleting the pair in the test's
// cleanup). Building a pair and entering its namespaces need root
// (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2; Available says whether
// both are there.
package netns
