package zone

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

// tableHash is a SHA-256 digest of everything a built zone serves from: the
// arenas (names, nodes, RRsets, blocks, wire, patches, trims), the negative
// SOA blocks, the serial and the record count. Two builds of one zone file
// hash alike exactly when their tables are byte-identical.
func tableHash(z *Zone) string {
	h := sha256.New()
	put := func(v any) {
		if err := binary.Write(h, binary.LittleEndian, v); err != nil {
			panic(err)
		}
	}
	// Each arena is preceded by its length, so that bytes moving from
	// one arena to the next change the digest.
	put(uint64(len(z.Names())))
	h.Write(z.Names())
	put(uint64(len(z.Nodes())))
	put(z.Nodes())
	put(uint64(len(z.Sets())))
	put(z.Sets())
	put(uint64(len(z.Blocks())))
	put(z.Blocks())
	put(uint64(len(z.Wire())))
	h.Write(z.Wire())
	put(uint64(len(z.Patches())))
	put(z.Patches())
	put(uint64(len(z.Trims())))
	put(z.Trims())
	put([]uint32{z.NegSOA(), z.NegSOASig(), z.Serial(), uint32(z.Records())})
	return hex.EncodeToString(h.Sum(nil))
}

// TestTableIdentity pins the tables built from a fixed set of zones to
// digests taken before the build's memory work (builder and block writer
// reusing their maps and buffers), so that such work provably changes
// nothing served. The zones cover referrals with in-domain and sibling
// glue (the root zone and the generated delegations), MX and SRV
// additional data, wildcards, CNAME and DNAME chains and large RRsets
// (snapshots of the conformance zones, kept here so that edits there do
// not move these digests).
//
// A deliberate change to what the build produces must update the digests;
// the failure message prints the new ones. They were last updated when
// Block gained its Flags byte (signed additional data): the zones here are
// unsigned, so every Flags is 0, and the tables hashed without that byte
// still gave the previous digests.
func TestTableIdentity(t *testing.T) {
	delegations := func() []byte {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		delegationZone(w, 2000)
		w.Flush()
		return buf.Bytes()
	}
	for _, tc := range []struct {
		origin, file string
		data         func() []byte
		want         string
	}{
		{".", rootFile, nil, "a29aff061fef3c5f0a4d087c95736ab6d2b409e64674b824b75b96510cfc9988"},
		{"deleg.", "generated", delegations, "e8b9af1c0b72c03e5b062dd73c0cd48f573316e403f23e0f3e38346bddfcf995"},
		{"big.test.", "testdata/identity/big.test.zone", nil, "a365c6d10c984db213e8ffcc179448cb989874db85bfdc3e1bd2c88dd56ad221"},
		{"chain.test.", "testdata/identity/chain.test.zone", nil, "c87435c995c1632ed3661aeaa35fc09cda532c1ebd7ca6cbcc4b9ca07c334fc2"},
		{"wild.test.", "testdata/identity/wild.test.zone", nil, "bfabcce0209b17c8636e16619d48847821371840bcb88c374623646fddd5a85e"},
		{"deleg.test.", "testdata/identity/deleg.test.zone", nil, "9a08e64a7e8041a81186e26a754fe533a27f6253d96369d47d2a1fc4ad90b180"},
		{"example.", "testdata/identity/example.zone", nil, "2711f25882039192918362915fc629fa0a01333df53604c177384da8d7f2b63e"},
	} {
		var z *Zone
		var err error
		if tc.data != nil {
			z, err = Parse(bytes.NewReader(tc.data()), tc.origin, tc.file)
		} else {
			z, err = LoadFile(tc.origin, tc.file)
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.origin, err)
		}
		if got := tableHash(z); got != tc.want {
			t.Errorf("%s (%s): table digest %s, want %s", tc.origin, tc.file, got, tc.want)
		}
		// The name index is not in the digest (its layout may change
		// freely), but it must find every node, whichever way the build
		// made it (renumbered from the builder's or built afresh).
		for i := range z.Nodes() {
			name := z.NodeName(&z.Nodes()[i])
			if got := z.Find(name, hashName(name)); got != uint32(i) {
				t.Fatalf("%s: Find(%s) = %d, want node %d", tc.origin, wireString(name), got, i)
			}
		}
		if z.ApexNode() == None || z.Nodes()[z.ApexNode()].Flags&FlagApex == 0 {
			t.Errorf("%s: apex node %d is not flagged the apex", tc.origin, z.ApexNode())
		}
	}
}
