package zone

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"
)

// refOnesSum is RFC 1071's reference loop, kept apart from onesSum so that
// the test does not check the build's code against itself.
func refOnesSum(b []byte) uint32 {
	var s uint32
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

// testZones loads the signed root zone and a zone of 2,000 generated
// delegations, the two the hash and sum tests run over.
func testZones(t *testing.T) []*Zone {
	root, err := LoadFile(".", rootFile)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	delegationZone(w, 2000)
	w.Flush()
	deleg, err := Parse(bytes.NewReader(buf.Bytes()), "deleg.", "generated")
	if err != nil {
		t.Fatal(err)
	}
	return []*Zone{root, deleg}
}

// TestBlockSums checks the sums the answer engine builds UDP checksums
// from: every block's base part, every additional part, and every proof
// block of the root zone's NSEC chain.
func TestBlockSums(t *testing.T) {
	// Sum lives in what was the Block's padding: MemoryBytes counts 28
	// bytes a block, and the sums must not make it wrong. reflect gives the
	// size unsafe.Sizeof would, without the import that only nic may make.
	if size := reflect.TypeFor[Block]().Size(); size != 28 {
		t.Fatalf("Block is %d bytes, MemoryBytes counts 28", size)
	}
	for _, z := range testZones(t) {
		check := func(what string, wire []byte, blocks []Block, additional bool) {
			adds := 0
			for i := range blocks {
				b := &blocks[i]
				data := wire[b.Off : b.Off+uint32(b.Len)]
				if got, want := uint32(b.Sum), refOnesSum(data[:b.Base]); got != want {
					t.Fatalf("%s %s block %d: Sum %#04x, want %#04x", z.Origin(), what, i, got, want)
				}
				if b.NTrim > 0 && additional {
					adds++
					if got, want := uint32(z.AdditionalSum(b)), refOnesSum(data[b.Base:]); got != want {
						t.Fatalf("%s %s block %d: additional sum %#04x, want %#04x", z.Origin(), what, i, got, want)
					}
				}
			}
			if additional && adds == 0 {
				t.Fatalf("%s: no block with additional records", z.Origin())
			}
		}
		check("table", z.Wire(), z.Blocks(), true)
		if z.Origin() == "." {
			if len(z.ProofBlocks()) == 0 {
				t.Fatal("the root zone has no proof blocks")
			}
			check("proof", z.ProofWire(), z.ProofBlocks(), false)
		}
	}
}

// TestIndexProbes guards the quality of HashLabel where it matters: the
// open-addressing name index of a large zone. At a load factor of at most
// two thirds, linear probing with a hash that spreads names evenly takes
// at most about 2 slots per successful lookup on average; a hash that
// clusters would take several.
func TestIndexProbes(t *testing.T) {
	for _, z := range testZones(t) {
		total, longest := 0, 0
		for i := range z.Nodes() {
			name := z.NodeName(&z.Nodes()[i])
			h := hashName(name)
			if z.Find(name, h) != uint32(i) {
				t.Fatalf("%s: node %d (%s) not found", z.Origin(), i, wireString(name))
			}
			probes := 1
			for k := slotOf(h, z.mask); z.index[k].node != uint32(i)+1; k = (k + 1) & z.mask {
				probes++
			}
			total += probes
			longest = max(longest, probes)
		}
		mean := float64(total) / float64(len(z.Nodes()))
		t.Logf("%s: %d nodes in %d slots, %.2f probes per lookup on average, %d at most", z.Origin(), len(z.Nodes()), len(z.index), mean, longest)
		if mean > 2.5 || longest > 60 {
			t.Errorf("%s: %.2f probes on average, %d at most: the hash clusters", z.Origin(), mean, longest)
		}
	}
}

// TestHashLabelEveryByte checks that HashLabel reads every byte of labels
// of every length, whichever way it loads them: changing any one byte
// changes the hash.
func TestHashLabelEveryByte(t *testing.T) {
	for n := 0; n <= 63; n++ {
		label := make([]byte, n+1)
		label[0] = byte(n)
		for i := 1; i <= n; i++ {
			label[i] = 'a' + byte(i%26)
		}
		h := HashLabel(HashSeed, label)
		for i := 1; i <= n; i++ {
			for _, c := range []byte{'0', '-', 0xff} {
				old := label[i]
				label[i] = c
				if HashLabel(HashSeed, label) == h {
					t.Fatalf("label of %d bytes: byte %d changed from %q to %q, hash unchanged", n, i, old, c)
				}
				label[i] = old
			}
		}
		if n > 0 && HashLabel(HashSeed, label) == HashLabel(HashSeed+1, label) {
			t.Fatalf("label of %d bytes: the hash ignores the suffix's", n)
		}
	}
}
