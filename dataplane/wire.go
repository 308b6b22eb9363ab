package dataplane

// Wire-format helpers: the network byte order of DNS fields (RFC 1035
// section 2.3.2) and walks over names. They are small enough to be inlined
// where they are called, and check no more than the slice bounds do: their
// callers have already made sure the bytes are there.

// be16 reads the 16-bit field at the start of p.
func be16(p []byte) uint16 { return uint16(p[0])<<8 | uint16(p[1]) }

// put16 writes v as a 16-bit field at the start of p.
func put16(p []byte, v uint16) {
	p[0] = byte(v >> 8)
	p[1] = byte(v)
}

// put32 writes v as a 32-bit field (a TTL) at the start of p.
func put32(p []byte, v uint32) {
	_ = p[3] // one bounds check for the four stores, which then combine into one
	p[0], p[1], p[2], p[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// wireName returns the wire-format name at the start of b (which holds a
// well-formed name: it comes from the zone's own arena).
func wireName(b []byte) []byte {
	i := 0
	for b[i] != 0 {
		i += int(b[i]) + 1
	}
	return b[:i+1]
}

// skipName returns the offset just after a possibly compressed name at p,
// or -1 when it runs past the message or is malformed.
func skipName(m []byte, p int) int {
	for {
		if p >= len(m) {
			return -1
		}
		l := int(m[p])
		switch {
		case l == 0:
			return p + 1
		case l&0xC0 == 0xC0:
			if p+2 > len(m) {
				return -1
			}
			return p + 2
		case l > 63:
			return -1
		}
		p += l + 1
	}
}
