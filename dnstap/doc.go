// Package dnstap writes dnstap messages (https://dnstap.info): the
// protobuf encoding of dnstap.proto's Dnstap and Message for the two kinds
// an authoritative server logs, AUTH_QUERY and AUTH_RESPONSE, framed as
// Frame Streams data frames, and the two Frame Streams outputs a collector
// reads: a Unix stream socket with the bidirectional handshake (READY,
// ACCEPT, START, then STOP and FINISH), reconnected with a growing pause
// when the collector goes away, and a file with the unidirectional one
// (START ... STOP), reopened for rotation.
//
// The encoder is written by hand for the dozen fields it fills: the
// protobuf wire format of varints, fixed32 and length-delimited fields is
// a few dozen lines, and a generated encoder would bring a protobuf
// runtime and allocate per message. Nothing here runs on the packet path:
// the data plane copies what a message needs into a per-worker ring
// (dataplane.Dnstap), and a control plane goroutine drains the rings
// through this package.
package dnstap
