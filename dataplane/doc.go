// Package dataplane holds everything done per packet: DNS header and question
// parsing, the authoritative answer engine over an immutable zone snapshot,
// the per-queue worker loops and their per-worker counters.
//
// Nothing here allocates, locks or calls fmt, log or miekg/dns on the path of
// a packet. The control plane publishes a *Snapshot through an atomic pointer;
// a worker loads it once per batch. The few UDP messages only the control
// plane can answer (NOTIFY, and messages signed with TSIG) are copied into a
// per-worker Handoff ring rather than answered.
package dataplane
