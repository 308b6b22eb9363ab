// Package archtest checks the house rules of README's "The house" on the
// module's own code, so that a change that breaks one fails the tests
// instead of waiting for a reader to notice:
//
//   - nic imports no DNS code (miekg/dns, zone, dataplane, controlplane);
//   - zone imports no packet code (nic, dataplane, the load generator,
//     cilium/ebpf) and, in its own files, no socket package;
//   - dataplane imports nothing of controlplane;
//   - the packet path (dataplane and nic) imports neither log nor
//     miekg/dns, and nothing reachable per packet from the worker's loop,
//     the ports' Receive and Send and the answer engine calls fmt, log or
//     miekg/dns;
//   - unsafe is imported in nic alone, tests included.
//
// The import rules read go list. The per-packet rule cannot: dataplane and
// nic import fmt for the errors of their setup (opening a port, pinning a
// thread), so it walks a call graph built from source with go/types from
// the hot entry points instead (see HotPath). Check is the checker,
// HouseRules the rules; the test runs them on ringdns and on a fixture
// module under testdata that breaks each rule, so that the checker is seen
// to fail as well as to pass. The rules are checked for the GOOS the tests
// run on, Linux, where every file of nic builds.
package archtest
