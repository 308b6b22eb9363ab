package onessum

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// refSum is RFC 1071's reference loop: 16-bit big-endian words added into a
// 32-bit accumulator, folded at the end.
func refSum(b []byte, initial uint32) uint32 {
	s := initial
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return s
}

func refChecksum(b []byte) uint16 { return ^uint16(refSum(b, 0)) }

func TestChecksumTable(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want uint16
	}{
		{"empty", nil, 0xffff},
		{"one byte", []byte{0x01}, ^uint16(0x0100)},
		{"two bytes", []byte{0x12, 0x34}, ^uint16(0x1234)},
		{"carry", []byte{0xff, 0xff, 0x00, 0x01}, ^uint16(0x0001)},
		// The IPv4 header example of RFC 1071's era, checksum field zeroed:
		// 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
		{"ipv4 header", []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}, 0xb861},
		{"all ones 40", bytesOf(40, 0xff), 0x0000},
		{"all zero 33", bytesOf(33, 0), 0xffff},
	}
	for _, c := range cases {
		if got := Checksum(c.in); got != c.want {
			t.Errorf("%s: Checksum = %#04x, want %#04x", c.name, got, c.want)
		}
		if ref := refChecksum(c.in); ref != c.want {
			t.Errorf("%s: reference = %#04x, want %#04x (the table is wrong)", c.name, ref, c.want)
		}
	}
}

func bytesOf(n int, v byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// TestSumMatchesReference covers every length up to 300 (each tail path of
// the unrolled loop) with random and extreme contents and initial values.
func TestSumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 300)
	for n := 0; n <= len(buf); n++ {
		for _, fill := range []int{-1, 0x00, 0xff} {
			for i := range buf[:n] {
				if fill < 0 {
					buf[i] = byte(r.Uint32())
				} else {
					buf[i] = byte(fill)
				}
			}
			for _, init := range []uint32{0, 1, 0xfffe, 0xffff, r.Uint32() & 0xffff, 0x1fffe} {
				if got, want := Sum(buf[:n], init), refSum(buf[:n], init); got != want {
					t.Fatalf("len %d fill %d init %#x: Sum = %#x, want %#x", n, fill, init, got, want)
				}
			}
		}
	}
}

// TestSumIncremental checks that parts summed separately combine into the
// sum of the whole, both chained and added.
func TestSumIncremental(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 1500)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for _, n := range []int{0, 1, 20, 41, 64, 512, 1232, 1500} {
		whole := Checksum(buf[:n])
		for split := 0; split <= n; split += 2 {
			chained := Fold(Sum(buf[split:n], Sum(buf[:split], 0)))
			added := Fold(Sum(buf[:split], 0) + Sum(buf[split:n], 0))
			if chained != whole || added != whole {
				t.Fatalf("len %d split %d: chained %#x added %#x, want %#x", n, split, chained, added, whole)
			}
		}
	}
}

func FuzzSum(f *testing.F) {
	f.Add([]byte{}, uint32(0), uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff}, uint32(0xffff), uint16(2))
	f.Add(bytesOf(77, 0xab), uint32(12345), uint16(40))
	f.Fuzz(func(t *testing.T, b []byte, init uint32, split uint16) {
		init &= 0x1ffff
		if got, want := Sum(b, init), refSum(b, init); got != want {
			t.Fatalf("Sum = %#x, want %#x", got, want)
		}
		s := int(split) &^ 1
		if s > len(b) {
			s = len(b) &^ 1
		}
		if got, want := Fold(Sum(b[s:], Sum(b[:s], 0))), refChecksum(b); got != want {
			t.Fatalf("split at %d: %#x, want %#x", s, got, want)
		}
	})
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 512, 1232} {
		buf := bytesOf(n, 0xa5)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			var s uint16
			for b.Loop() {
				s += Checksum(buf)
			}
			sink16 = s
		})
	}
}

var sink16 uint16

// TestSumMasked checks SumMasked against the reference for every length up
// to 300, with random bytes past the end that it must ignore.
func TestSumMasked(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 320)
	for n := 0; n <= 300; n++ {
		for range 8 {
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			if got, want := SumMasked(buf[:n/8*8+8], n), refSum(buf[:n], 0); got != want {
				t.Fatalf("%d bytes: SumMasked %#04x, want %#04x", n, got, want)
			}
		}
	}
}

// TestSwapAndHalves checks the pieces that code summing fixed headers from
// its own loads uses: Halves over little-endian 8-byte loads, then Swap,
// gives Sum; and Swap of the sum of words at odd offsets, added to the sum
// of the words at even offsets, gives the sum of the whole.
func TestSwapAndHalves(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 64)
	for range 1000 {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		var acc uint64
		for i := 0; i < len(buf); i += 8 {
			acc += Halves(binary.LittleEndian.Uint64(buf[i:]))
		}
		if got, want := Swap(acc), refSum(buf, 0); got != want {
			t.Fatalf("Swap of little-endian halves %#04x, want %#04x", got, want)
		}
		// Split at an odd offset: the second part's words straddle the
		// words of the whole, so its sum joins with its bytes swapped.
		odd := 1 + 2*int(rng.Uint32()%31)
		joined := Reduce(uint64(Sum(buf[:odd], 0)) + uint64(Swap(uint64(Sum(buf[odd:], 0)))))
		if got, want := ^uint16(joined), refChecksum(buf); got != want {
			t.Fatalf("split at odd offset %d: %#04x, want %#04x", odd, got, want)
		}
	}
}
