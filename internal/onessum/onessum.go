package onessum

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
//
// The main loop reads 32-bit words and adds them as plain integers to 64-bit
// accumulators: the carries collect in the upper 32 bits and are folded back
// at the end, which is what ones'-complement addition does with them anyway.
// Without a carry chain, the four accumulators are independent and the
// additions run in parallel; a sum with carries (ADC) would be one serial
// chain. (Splitting 8-byte loads into halves with a mask and a shift did the
// same work in twice the instructions: 1232 bytes took 65 ns, now 38.)
func Sum(b []byte, initial uint32) uint32 {
	// The accumulators are in little-endian word order; initial is in
	// big-endian order, so it is swapped on the way in.
	a0 := uint64(bits.ReverseBytes16(uint16(Reduce(uint64(initial)))))
	var a1, a2, a3 uint64
	for len(b) >= 32 {
		// Zero-extending 32-bit loads split the words with no masks or
		// shifts: two loads and two adds per 8 bytes, and the loads
		// issue on ports the adds do not use.
		b = b[:len(b):len(b)]
		a0 += uint64(binary.LittleEndian.Uint32(b[0:4])) + uint64(binary.LittleEndian.Uint32(b[4:8]))
		a1 += uint64(binary.LittleEndian.Uint32(b[8:12])) + uint64(binary.LittleEndian.Uint32(b[12:16]))
		a2 += uint64(binary.LittleEndian.Uint32(b[16:20])) + uint64(binary.LittleEndian.Uint32(b[20:24]))
		a3 += uint64(binary.LittleEndian.Uint32(b[24:28])) + uint64(binary.LittleEndian.Uint32(b[28:32]))
		b = b[32:]
	}
	for len(b) >= 8 {
		a0 += Halves(binary.LittleEndian.Uint64(b[0:8]))
		b = b[8:]
	}
	if len(b) >= 4 {
		a1 += uint64(binary.LittleEndian.Uint32(b[0:4]))
		b = b[4:]
	}
	if len(b) >= 2 {
		a2 += uint64(binary.LittleEndian.Uint16(b[0:2]))
		b = b[2:]
	}
	if len(b) == 1 {
		// In little-endian word order the odd byte is the low byte of a word
		// whose high byte is the zero pad; after the final swap it is the
		// high byte of a big-endian word, as RFC 1071 pads it.
		a3 += uint64(b[0])
	}
	// An accumulator gains less than 2^33 per 32 bytes, so for any b
	// shorter than 2^33 bytes, far more than a packet, each stays below
	// 2^61 and their total does not overflow.
	return Swap(a0 + a1 + a2 + a3)
}

// SumMasked returns Sum(b[:n], 0) for a short n, reading b in whole 8-byte
// words and masking off the bytes of the last one past n, where Sum would
// take a branch for each of its tail sizes: on a DNS question, whose length
// varies from one query to the next, those branches mispredict. b must hold
// n/8*8+8 bytes; the bytes past n are read but do not count.
func SumMasked(b []byte, n int) uint32 {
	var a uint64
	i := 0
	for ; i+8 <= n; i += 8 {
		a += Halves(binary.LittleEndian.Uint64(b[i:]))
	}
	a += Halves(binary.LittleEndian.Uint64(b[i:]) & (1<<(8*(n-i)) - 1))
	return Swap(a)
}

// Halves returns the sum of the two 32-bit halves of x: how an 8-byte
// little-endian load joins a sum accumulated in 64 bits, to be turned into
// a partial sum by Swap. Code that sums fixed headers from the loads it
// already made (nic's reply rewrite) uses it instead of calling Sum.
func Halves(x uint64) uint64 { return x&0xffffffff + x>>32 }

// Swap reduces acc to 16 bits (see Reduce) and swaps its two bytes. It turns
// a sum of byte-swapped words into a partial sum of big-endian words, as Sum
// returns it: a sum accumulated from little-endian loads (with Halves), or
// the sum of the words at odd offsets of a message, whose bytes straddle
// the big-endian words of the whole (RFC 1071 section 2(B)).
func Swap(acc uint64) uint32 {
	return uint32(bits.ReverseBytes16(uint16(Reduce(acc))))
}

// Reduce folds a 64-bit sum of 16-bit words, with its carries in the upper
// bits, to a 16-bit partial sum with end-around carries: the form Sum
// returns, not complemented. Partial sums can be added as plain integers
// and reduced once at the end.
func Reduce(s uint64) uint32 {
	s = (s >> 32) + (s & 0xffffffff) // at most 33 bits
	s = (s >> 16) + (s & 0xffff)     // at most 0x1fffe + 1
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint32(s)
}

// Fold turns a partial sum (from Sum, or several added together) into the
// checksum to store: folded to 16 bits and complemented.
func Fold(sum uint32) uint16 {
	return ^uint16(Reduce(uint64(sum)))
}
