package controlplane

import (
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/dataplane"
)

// TestRRLConfig: the [rrl] table's defaults, and an error naming the
// setting for each bad value and for an unknown key.
func TestRRLConfig(t *testing.T) {
	for _, c := range []struct {
		name, text string
		err        string // "" for none
		check      func(*RRLConfig) bool
	}{
		{"absent: off", "", "", func(r *RRLConfig) bool { return r == nil && !r.on() }},
		{"defaults", "[rrl]\nrate = 20\n", "", func(r *RRLConfig) bool {
			return r.on() && r.Burst == 20 && *r.Slip == 2 && r.IPv4Prefix == 24 && r.IPv6Prefix == 56 && r.TableSize == 65536
		}},
		{"rate 0 is off", "[rrl]\nrate = 0\n", "", func(r *RRLConfig) bool { return r != nil && !r.on() }},
		{"slip 0 kept", "[rrl]\nrate = 5\nslip = 0\n", "", func(r *RRLConfig) bool { return *r.Slip == 0 }},
		{"all set", "[rrl]\nrate = 5\nburst = 50\nslip = 3\nipv4-prefix = 32\nipv6-prefix = 64\ntable-size = 4096\nwhitelist = [\"192.0.2.7\", \"2001:db8::/32\", \"198.51.100.9/24\"]\n", "",
			func(r *RRLConfig) bool {
				return r.Burst == 50 && *r.Slip == 3 && r.IPv4Prefix == 32 && r.IPv6Prefix == 64 && r.TableSize == 4096 &&
					fmt.Sprint(r.whitelist) == "[192.0.2.7/32 2001:db8::/32 198.51.100.0/24]"
			}},
		{"negative rate", "[rrl]\nrate = -1\n", "rrl.rate -1: negative", nil},
		{"negative burst", "[rrl]\nrate = 1\nburst = -1\n", "rrl.burst -1: negative", nil},
		{"slip", "[rrl]\nrate = 1\nslip = -1\n", "rrl.slip -1: must be 0", nil},
		{"ipv4-prefix", "[rrl]\nrate = 1\nipv4-prefix = 33\n", "rrl.ipv4-prefix 33: must be 1 to 32", nil},
		{"ipv6-prefix", "[rrl]\nrate = 1\nipv6-prefix = 129\n", "rrl.ipv6-prefix 129: must be 1 to 128", nil},
		{"table-size small", "[rrl]\nrate = 1\ntable-size = 10\n", "rrl.table-size 10: must be 1024 to", nil},
		{"table-size large", "[rrl]\nrate = 1\ntable-size = 1000000000\n", "rrl.table-size 1000000000: must be", nil},
		{"whitelist", "[rrl]\nrate = 1\nwhitelist = [\"192.0.2.0/33\"]\n", `rrl.whitelist "192.0.2.0/33"`, nil},
		{"whitelist address", "[rrl]\nrate = 1\nwhitelist = [\"example.com\"]\n", `rrl.whitelist "example.com"`, nil},
		{"unknown key", "[rrl]\nrate = 1\nrate-limit = 5\n", "unknown configuration key rrl.rate-limit", nil},
	} {
		cfg, err := ParseConfig([]byte(c.text+"[[zone]]\norigin = \"example.\"\nfile = \"x\"\n"), "test.toml")
		if err == nil {
			err = cfg.Normalize()
		}
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == "" && !c.check(cfg.RRL):
			t.Errorf("%s: %+v", c.name, cfg.RRL)
		}
	}
}

// rrlServerConfig writes a configuration file serving example. on
// 127.0.0.1 from two socket workers, with the [rrl] table given, and
// loads it.
func rrlServerConfig(t *testing.T, dir, rrl string) *Config {
	t.Helper()
	zf := filepath.Join(dir, "example.zone")
	writeFile(t, zf, zoneText("example.", 1))
	path := filepath.Join(dir, "ringdns.toml")
	writeRRLConfig(t, path, rrl)
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	return c
}

func writeRRLConfig(t *testing.T, path, rrl string) {
	t.Helper()
	dir := filepath.Dir(path)
	text := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\ncpus = \"0-1\"\ncontrol = %q\n\n[[zone]]\norigin = \"example.\"\nfile = \"example.zone\"\n\n%s",
		filepath.Join(dir, "c.sock"), rrl)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rrlAskSOA sends n queries for the SOA of example. from one socket (so one
// source address and port, which the kernel hands to one of the
// address's sockets) and returns how many replies carried the answer and
// how many were empty with TC set.
func rrlAskSOA(t *testing.T, addr string, n int) (full, slipped int) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	for i := 0; i < n; i++ {
		q := new(dns.Msg)
		q.SetQuestion("example.", dns.TypeSOA)
		q.Id = uint16(i + 1)
		b, _ := q.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		// Every query gets a reply here (slip 1): the deadline is only
		// a bound on a lost datagram on loopback, which does not happen.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:m]); err != nil || r.Id != q.Id {
			t.Fatalf("query %d: reply %v, %v", i, r, err)
		}
		switch {
		case len(r.Answer) == 1 && !r.Truncated:
			full++
		case len(r.Answer) == 0 && r.Truncated:
			slipped++
		default:
			t.Fatalf("query %d: neither the answer nor a slipped reply:\n%v", i, r)
		}
	}
	return full, slipped
}

// TestServerRRL: the [rrl] table reaches every socket worker, with the
// rate divided by the two workers of the address; one client over its
// rate gets the burst and then slipped replies, which the metrics count;
// a reload that turns it off, then on again with a larger burst, applies.
func TestServerRRL(t *testing.T) {
	dir := t.TempDir()
	cfg := rrlServerConfig(t, dir, "[rrl]\nrate = 2\nburst = 10\nslip = 1\n")
	s := startServer(t, cfg)
	if len(s.workers) != 2 {
		t.Fatalf("%d workers, want 2 (cpus 0-1)", len(s.workers))
	}
	for _, w := range s.workers {
		if w.worker.RRL.Load() == nil {
			t.Fatalf("worker %s has no limiter", w.Name)
		}
	}
	addr := s.Listen()[0].String()
	// The burst of 10 split over two workers is 5 at the one the client's
	// socket hashes to; the rate of 2 per second, 1 per worker, adds one
	// for each second the queries take (milliseconds, unless the machine
	// is very loaded).
	start := time.Now()
	full, slipped := rrlAskSOA(t, addr, 30)
	if most := 6 + int(time.Since(start).Seconds()); full < 5 || full > most || slipped != 30-full {
		t.Errorf("rate 2, burst 10 over 2 workers: %d answers and %d slipped of 30, want 5-%d answers", full, slipped, most)
	}
	var v dataplane.CounterValues
	for _, w := range s.workers {
		v.Add(w.counters.Values())
	}
	if v.RRLSlipped[dataplane.RRLAnswer] != uint64(slipped) {
		t.Errorf("counters: %d slipped answers, want %d", v.RRLSlipped[dataplane.RRLAnswer], slipped)
	}
	// ringctl stats carries them too, by class name, in the total and in
	// the worker that limited.
	st := s.Stats()
	if got := st.Total.RRLSlipped["answer"]; got != uint64(slipped) || len(st.Total.RRLDropped) != 0 {
		t.Errorf("stats: total slipped %v, dropped %v; want answer=%d slipped and none dropped", st.Total.RRLSlipped, st.Total.RRLDropped, slipped)
	}
	var perWorker uint64
	for _, w := range st.Workers {
		perWorker += w.RRLSlipped["answer"]
	}
	if perWorker != uint64(slipped) {
		t.Errorf("stats: the workers' slipped answers add up to %d, want %d", perWorker, slipped)
	}
	rec := httptest.NewRecorder()
	MetricsHandler(s).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var scraped int
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, `ringdns_rrl_slipped_total{class="answer"`) {
			var n int
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &n)
			scraped += n
		}
	}
	if scraped != slipped || !strings.Contains(rec.Body.String(), `ringdns_rrl_dropped_total{class="nxdomain",worker="udp1"} 0`) {
		t.Errorf("metrics: %d slipped answers scraped, want %d:\n%s", scraped, slipped, rec.Body.String())
	}

	// Off: every reply is the answer.
	writeRRLConfig(t, cfg.Source, "")
	s.ReloadRRL(nil)
	if full, _ := rrlAskSOA(t, addr, 30); full != 30 {
		t.Errorf("after a reload without [rrl]: %d answers of 30", full)
	}
	// A bad table is refused and changes nothing.
	writeRRLConfig(t, cfg.Source, "[rrl]\nrate = -5\n")
	s.ReloadRRL(nil)
	if full, _ := rrlAskSOA(t, addr, 30); full != 30 {
		t.Errorf("after a reload with a bad [rrl]: %d answers of 30, want the table in force (off) kept", full)
	}
	// On again, with a burst of 40: 20 at the client's worker.
	writeRRLConfig(t, cfg.Source, "[rrl]\nrate = 2\nburst = 40\nslip = 1\n")
	s.ReloadRRL(nil)
	start = time.Now()
	if full, _ := rrlAskSOA(t, addr, 30); full < 20 || full > 21+int(time.Since(start).Seconds()) {
		t.Errorf("after a reload with burst 40: %d answers of 30, want 20 and one a second", full)
	}
	// A reload of named zones leaves the table alone.
	writeRRLConfig(t, cfg.Source, "")
	s.ReloadRRL([]string{"example."})
	if s.workers[0].worker.RRL.Load() == nil {
		t.Error("a reload of one zone turned rate limiting off")
	}
}
