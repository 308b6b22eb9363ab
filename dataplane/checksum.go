package dataplane

import (
	"encoding/binary"
	"math/bits"
)

// Checksum returns the Internet checksum of b (RFC 1071): the ones'
// complement of the ones'-complement sum of b's 16-bit big-endian words, an
// odd final byte padded with a zero byte. A header whose checksum field holds
// the value Checksum computed over it with that field zeroed sums to 0xffff,
// and Checksum over the whole header then returns 0.
func Checksum(b []byte) uint16 {
	return Fold(Sum(b, 0))
}

// Sum adds the 16-bit big-endian words of b to the partial ones'-complement
// sum initial and returns the new partial sum, folded to 16 bits (at most
// 0xffff). It is the incremental form of Checksum: a pseudo-header, a
// transport header and a payload can be summed separately and combined, with
// Sum(b2, Sum(b1, 0)) or by adding independently computed partial sums and
// passing the total to Fold, provided every part except the last has an even
// length (the words of a part must start at an even offset of the whole).
//
// Sum reads b eight bytes at a time in the machine's little-endian order and
// swaps the bytes of the folded result at the end. This is exact because a
// ones'-complement sum is independent of byte order up to that final swap
// (RFC 1071 section 2(B)); it saves a byte swap per load.
func Sum(b []byte, initial uint32) uint32 {
	// The accumulator is in little-endian word order; initial is in
	// big-endian order, so it is swapped on the way in.
	acc := uint64(bits.ReverseBytes16(uint16(foldTo16(uint64(initial)))))
	var c uint64
	// The main loop adds 32 bytes per iteration with a single carry chain;
	// the carry out of the last addition is added back in on the next one.
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.LittleEndian.Uint32(b[0:4])), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.LittleEndian.Uint16(b[0:2])), c)
		b = b[2:]
	}
	if len(b) == 1 {
		// In little-endian word order the odd byte is the low byte of a word
		// whose high byte is the zero pad; after the final swap it is the
		// high byte of a big-endian word, as RFC 1071 pads it.
		acc, c = bits.Add64(acc, uint64(b[0]), c)
	}
	acc, c = bits.Add64(acc, 0, c)
	acc += c
	return uint32(bits.ReverseBytes16(uint16(foldTo16(acc))))
}

// foldTo16 folds a 64-bit ones'-complement sum to 16 bits with end-around
// carries.
func foldTo16(s uint64) uint32 {
	s = (s >> 32) + (s & 0xffffffff) // at most 33 bits
	s = (s >> 16) + (s & 0xffff)     // at most 0x1fffe + 1
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint32(s)
}

// Fold turns a partial sum (from Sum, or several added together) into the
// checksum to store: folded to 16 bits and complemented.
func Fold(sum uint32) uint16 {
	return ^uint16(foldTo16(uint64(sum)))
}
