package dataplane

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestLower8 checks the eight-byte lowercasing against the byte-at-a-time
// rule for every byte value at every position, beside random neighbours
// (a carry or borrow between bytes would show there).
func TestLower8(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			for range 16 {
				var in, want [8]byte
				binary.LittleEndian.PutUint64(in[:], rng.Uint64())
				in[pos] = byte(c)
				for i, b := range in {
					if b >= 'A' && b <= 'Z' {
						b += 32
					}
					want[i] = b
				}
				var got [8]byte
				binary.LittleEndian.PutUint64(got[:], lower8(binary.LittleEndian.Uint64(in[:])))
				if got != want {
					t.Fatalf("lower8(% x) = % x, want % x", in, got, want)
				}
			}
		}
	}
}

// TestParseQNameCase checks that parseQName lowercases labels of every
// length, whether read eight bytes at a time or one by one.
func TestParseQNameCase(t *testing.T) {
	for l := 1; l <= 63; l++ {
		label := bytes.Repeat([]byte("AbZ@[`z{-"), 8)[:l]
		q := append(make([]byte, hdrLen), byte(l))
		q = append(q, label...)
		q = append(q, 0, 0, 1, 0, 1)
		var nm name
		if n := parseQName(q, &nm); n != l+2 {
			t.Fatalf("label of %d bytes: parsed %d bytes", l, n)
		}
		want := append([]byte{byte(l)}, bytes.ToLower(label)...)
		if want = append(want, 0); !bytes.Equal(nm.b[:nm.n], want) {
			t.Fatalf("label of %d bytes: %q, want %q", l, nm.b[:nm.n], want)
		}
	}
}
