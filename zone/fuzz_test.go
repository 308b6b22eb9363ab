package zone

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary master-file text to Parse: it must never
// panic, every error must be a *LoadError, and every zone it accepts must
// hold its invariants (nodes in canonical order, each found by its hash,
// blocks inside the wire arena) and yield through Walk exactly the
// records of the text (checkWalk).
func FuzzParse(f *testing.F) {
	seeds := []string{
		head,
		head + "www CNAME ns1\nwww A 192.0.2.2\n",
		head + "old DNAME new.example.\na.b.old A 192.0.2.2\n",
		head + "sub NS ns.sub\nns.sub A 192.0.2.3\nsub DS 1 13 2 abcd\n*.w TXT \"x\" \"y\"\n",
		head + "x TYPE65280 \\# 3 abcdef\nx CLASS1 TYPE1 \\# 4 c0000202\n",
		head + "@ MX 10 mail\nmail AAAA 2001:db8::1\n_s._tcp SRV 0 0 53 ns1\n",
		"$ORIGIN example.com.\n$TTL 1\n@ SOA ( ns1 h 1 2 3\n 4 5 )\n@ NS ns1\n",
		"$TTL 3600\n@ SOA ns1 hostmaster 1 2 3 4 5\n@ NS ns1\n$GENERATE 1-4 h$ A 192.0.2.$\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	if root, err := os.ReadFile(rootFile); err == nil {
		// A slice of the root zone, cut at a line end.
		cut := root[:8192]
		f.Add(cut[:bytes.LastIndexByte(cut, '\n')+1])
	}
	// The zone's file name lives in an empty directory, so that relative
	// $INCLUDE paths resolve to files that do not exist.
	file := filepath.Join(f.TempDir(), "fuzz.zone")
	f.Fuzz(func(t *testing.T, data []byte) {
		// An $INCLUDE of an absolute or parent path could read any file of
		// the machine, including devices that never end: leave those out.
		if lower := bytes.ToLower(data); bytes.Contains(lower, []byte("$include")) &&
			(bytes.ContainsAny(data, "/\\") || bytes.Contains(data, []byte(".."))) {
			t.Skip()
		}
		origin := "example.com."
		if len(data) > 0 && data[0]&1 == 1 {
			origin = "."
		}
		z, err := Parse(bytes.NewReader(data), origin, file)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not a *LoadError: %v", err, err)
			}
			if le.File == "" || le.Origin != origin || le.Msg == "" {
				t.Fatalf("error lacks its context: %#v", le)
			}
			if z != nil {
				t.Fatal("zone returned with an error")
			}
			if !strings.HasPrefix(err.Error(), le.File) {
				t.Fatalf("Error() %q does not start with the file", err.Error())
			}
			return
		}
		checkInvariants(t, z)
		checkWalk(t, z, data, origin, file)
	})
}

func checkInvariants(t *testing.T, z *Zone) {
	nodes := z.Nodes()
	if z.ApexNode() == None || nodes[z.ApexNode()].Flags&FlagApex == 0 {
		t.Fatal("no apex node")
	}
	for i := range nodes {
		n := &nodes[i]
		name := z.NodeName(n)
		if i > 0 && CompareCanonical(z.NodeName(&nodes[i-1]), name) >= 0 {
			t.Fatalf("nodes %d and %d out of canonical order", i-1, i)
		}
		if !isSubdomain(name, z.Apex()) {
			t.Fatalf("node %s outside the zone", wireString(name))
		}
		if got := z.Find(name, hashName(name)); got != uint32(i) {
			t.Fatalf("Find(%s) = %d, want %d", wireString(name), got, i)
		}
		for s := n.Set0; s < n.Set0+uint32(n.NSets); s++ {
			rs := z.Sets()[s]
			for _, b := range []uint32{rs.Block, rs.Sig} {
				if b == None {
					continue
				}
				blk := z.Blocks()[b]
				if int(blk.Off)+int(blk.Len) > len(z.Wire()) || blk.Base > blk.Len {
					t.Fatalf("block %d outside the wire arena", b)
				}
			}
		}
	}
}
