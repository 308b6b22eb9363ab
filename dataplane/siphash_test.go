package dataplane

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// TestSipHash24Vectors checks sipHash24 against the 64 outputs of the
// reference implementation (testdata/siphash24-vectors.txt): every message
// length from 0 to 63 bytes, so each length of the last, partial word and
// one to seven whole words.
func TestSipHash24Vectors(t *testing.T) {
	f, err := os.Open("testdata/siphash24-vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var key [16]byte
	var msg [64]byte
	for i := range key {
		key[i] = byte(i)
	}
	for i := range msg {
		msg[i] = byte(i)
	}
	k0, k1 := binary.LittleEndian.Uint64(key[0:8]), binary.LittleEndian.Uint64(key[8:16])
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		want, err := hex.DecodeString(line)
		if err != nil || len(want) != 8 {
			t.Fatalf("vector %d: %q", n, line)
		}
		var got [8]byte
		binary.LittleEndian.PutUint64(got[:], sipHash24(k0, k1, msg[:n]))
		if !bytes.Equal(got[:], want) {
			t.Errorf("%d bytes: got %x, want %x", n, got, want)
		}
		n++
	}
	if n != 64 {
		t.Fatalf("%d vectors, want 64", n)
	}
}
