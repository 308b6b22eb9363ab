// Package loadgen is the engine of ringperf, the project's DNS load
// generator: it reads query files, builds every query's Ethernet frame once,
// and drives one nic.Originator per queue, sending copies of those frames
// with a fresh source port and ID and matching replies to queries by the
// pair.
//
// The per-query work is a copy of the prepared frame, three 16-bit stores
// and a checksum completed from a partial sum prepared with the frame; the
// per-reply work is a short header parse, one atomic swap in the sender's
// table and a histogram increment. Neither allocates, locks nor makes a
// system call: the port's kicks are the only system calls, once per batch.
//
// Replies are matched without locks. Each queue's thread owns a disjoint
// range of source ports and a table with one slot per (port, ID) pair it
// cycles through, holding the send time of the query in flight. The thread
// whose queue a reply arrives on finds the owner from the destination port
// and takes the slot with an atomic swap, so a reply that a kernel-socket
// server sends back on another queue is matched as well.
package loadgen
