// Package onessum computes the Internet checksum (RFC 1071): the
// ones'-complement sum of 16-bit big-endian words, in the incremental form
// that lets a pseudo-header, a transport header and a payload be summed
// apart and joined.
//
// It is the one copy of that arithmetic in ringdns: the zone builder sums
// each prepared answer block once, the answer engine joins those sums into
// the sum of a reply, package nic finishes the UDP and IPv4 checksums of the
// AF_XDP path, and the load generator fills in the checksum of each query it
// sends. It imports nothing of the project, so every layer may use it.
package onessum
