// Package dns stands in for miekg/dns.
package dns

// Pack stands in for the library's message packing.
func Pack(b []byte) int { return len(b) }
