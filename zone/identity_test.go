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
// the failure message prints the new ones.
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
		{".", rootFile, nil, "04a1857efc191d25468d3d410695b1c2227cd107895a2f8c01cb09ad376f25da"},
		{"deleg.", "generated", delegations, "715a80794656bc6f1facca8d9982f3d1cf0cc77560887ec528cb89fa63c99b1f"},
		{"big.test.", "testdata/identity/big.test.zone", nil, "3e92a0f2a1cbf1b3901f2eba699ef6176a55e506ab8c11b2b7d6c5ac548e55fb"},
		{"chain.test.", "testdata/identity/chain.test.zone", nil, "4833147ce2552679bc6f55e81aeab14170b5cfd81e81b004ddc5739f33cab3e1"},
		{"wild.test.", "testdata/identity/wild.test.zone", nil, "65ed80887d02c7d437e46e95f1bda532c4fcfe2c84ce422d8d6fa37b72984872"},
		{"deleg.test.", "testdata/identity/deleg.test.zone", nil, "650ca72157e2729b0f382f228164a28cee8f40c41f3e18b3b0fca3310a8a8fca"},
		{"example.", "testdata/identity/example.zone", nil, "bc1f3c6e8b8105c33075644cdda7eae17a5195f1c70e68bc7d6b0e5cb6fbfc0c"},
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
