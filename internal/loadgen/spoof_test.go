package loadgen

import (
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/nic/nictest"
)

// TestPutSpoofed: a spoofed copy leaves from an address of the prefix,
// with the IPv4 header and UDP checksums still verifying, over both
// families and many host values; and the sources spread over the prefix.
func TestPutSpoofed(t *testing.T) {
	for _, c := range []struct {
		v6     bool
		prefix string
		hosts  int // distinct sources expected at least
	}{{false, "198.18.5.0/24", 250}, {true, "fd53::5:0/112", 1000}} {
		f := testFrames(t, c.v6, Options{EDNSSize: 4096})
		p := netip.MustParsePrefix(c.prefix)
		if err := f.Spoof(p); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		seen := map[netip.Addr]bool{}
		x := uint32(1)
		for k := 0; k < 5000; k++ {
			x = x*1664525 + 1013904223
			sport, id := uint16(x>>3), uint16(x>>11)
			n := f.PutSpoofed(buf, k%f.Len(), sport, id, x)
			checkFrame(t, buf[:n], c.v6, sport, id)
			var src netip.Addr
			if c.v6 {
				src = netip.AddrFrom16([16]byte(buf[14+8 : 14+24]))
			} else {
				src = netip.AddrFrom4([4]byte(buf[14+12 : 14+16]))
			}
			if !p.Contains(src) {
				t.Fatalf("%s: source %v", c.prefix, src)
			}
			if f.FromOwn(buf[:n]) {
				t.Fatalf("%s: a spoofed copy counted as from the own address", c.prefix)
			}
			seen[src] = true
		}
		if len(seen) < c.hosts {
			t.Errorf("%s: %d distinct sources in 5000 copies", c.prefix, len(seen))
		}
	}
	f := testFrames(t, false, Options{})
	for _, bad := range []string{"fd53::/64", "198.18.5.7/32"} {
		if err := f.Spoof(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("Spoof(%s) on IPv4 frames succeeded", bad)
		}
	}
}

// TestRunSpoofed: a spoofed run with every tenth query from the own
// address, against a port that reflects every query to its source, counts
// the two kinds apart.
func TestRunSpoofed(t *testing.T) {
	f := testFrames(t, false, Options{})
	if err := f.Spoof(netip.MustParsePrefix("198.18.5.0/24")); err != nil {
		t.Fatal(err)
	}
	port := nictest.New(nictest.Config{Buffers: 512, BufSize: 2048, Loopback: reflect(false)})
	r, err := NewRun(Config{Count: 1000, Duration: 10 * time.Second, Rate: 100000, OwnEvery: 10}, f, []nic.Originator{port})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	res, err := r.Wait()
	if err != nil {
		t.Fatal(err)
	}
	sp := res.Spoof
	if sp == nil || sp.Own.Sent != 100 || sp.Spoofed.Sent != 900 || sp.Own.Answered != 100 || sp.Spoofed.Answered != 900 {
		t.Fatalf("spoof split %+v, want 100 own and 900 spoofed, all answered", sp)
	}
	if sp.QueryBytes == 0 || sp.Amplification < 0.99 || sp.Amplification > 1.01 {
		t.Errorf("a reflector that returns the query: amplification %.3f over %d query bytes, want 1", sp.Amplification, sp.QueryBytes)
	}
}

// TestSpoofNotOwn: a spoofed prefix that holds the own address never sends
// from it, so that replies to the own address are the own client's.
func TestSpoofNotOwn(t *testing.T) {
	f := testFrames(t, false, Options{})
	if err := f.Spoof(netip.MustParsePrefix("198.18.0.0/24")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for host := uint32(0); host < 512; host++ {
		n := f.PutSpoofed(buf, 0, 40000, 1, host)
		checkFrame(t, buf[:n], false, 40000, 1)
		if src := netip.AddrFrom4([4]byte(buf[26:30])); src == testLink(false).Src {
			t.Fatalf("host %d: sent from the own address %v", host, src)
		}
	}
}

// TestFramesCookie: Options.Cookie puts a COOKIE option in every query.
func TestFramesCookie(t *testing.T) {
	ck := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}
	f := testFrames(t, false, Options{Cookie: ck})
	buf := make([]byte, 2048)
	for i := 0; i < f.Len(); i++ {
		n := f.Put(buf, i, 40000, 7)
		m := checkFrame(t, buf[:n], false, 40000, 7)
		o := m.IsEdns0()
		if o == nil || len(o.Option) != 1 {
			t.Fatalf("frame %d: OPT %v, want one option", i, o)
		}
		if c, ok := o.Option[0].(*dns.EDNS0_COOKIE); !ok || c.Cookie != hex.EncodeToString(ck) {
			t.Errorf("frame %d: option %v, want the cookie %x", i, o.Option[0], ck)
		}
	}
}
