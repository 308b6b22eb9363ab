package controlplane

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/dnstap"
	"github.com/ringdns/ringdns/nic"
)

func TestDnstapConfig(t *testing.T) {
	host, _ := os.Hostname()
	for _, c := range []struct {
		name, text string
		err        string // "" for none
		check      func(*DnstapConfig) bool
	}{
		{"absent: off", "", "", func(d *DnstapConfig) bool { return d == nil }},
		{"defaults", "[dnstap]\nsocket = \"/run/tap.sock\"\n", "", func(d *DnstapConfig) bool {
			return *d.Identity == host && *d.Version == "ringdns "+Version && d.SampleRate == 1 && d.RingSize == dataplane.DefaultDnstapSlots &&
				d.filter.Queries && d.filter.Responses && d.filter.Sample == 1 && d.filter.Rcodes == 0 && d.filter.Qtypes == nil
		}},
		{"all set", "[dnstap]\nfile = \"/var/log/tap.fstrm\"\nidentity = \"\"\nversion = \"v\"\nsample-rate = 10\nlog-queries = false\n" +
			"rcodes = [\"NXDOMAIN\", \"refused\", \"16\"]\nqtypes = [\"DNSKEY\", \"type65\", \"255\"]\nring-size = 64\n", "",
			func(d *DnstapConfig) bool {
				f := d.filter
				return *d.Identity == "" && *d.Version == "v" && f.Sample == 10 && !f.Queries && f.Responses &&
					f.Rcodes == 1<<3|1<<5|1<<16 && slices.Equal(f.Qtypes, []uint16{dns.TypeDNSKEY, 65, 255}) && d.RingSize == 64
			}},
		{"no output", "[dnstap]\nsample-rate = 2\n", "dnstap: set socket", nil},
		{"two outputs", "[dnstap]\nsocket = \"a\"\nfile = \"b\"\n", "socket and file are both set", nil},
		{"nothing logged", "[dnstap]\nsocket = \"a\"\nlog-queries = false\nlog-responses = false\n", "both false", nil},
		{"sample-rate", "[dnstap]\nsocket = \"a\"\nsample-rate = -1\n", "dnstap.sample-rate -1", nil},
		{"ring-size", "[dnstap]\nsocket = \"a\"\nring-size = 2000000\n", "dnstap.ring-size 2000000", nil},
		{"rcode", "[dnstap]\nsocket = \"a\"\nrcodes = [\"NXDOMIAN\"]\n", `dnstap.rcodes "NXDOMIAN"`, nil},
		{"rcode number", "[dnstap]\nsocket = \"a\"\nrcodes = [\"64\"]\n", `dnstap.rcodes "64"`, nil},
		{"qtype", "[dnstap]\nsocket = \"a\"\nqtypes = [\"AAA\"]\n", `dnstap.qtypes "AAA"`, nil},
		{"unknown key", "[dnstap]\nsocket = \"a\"\nsample = 5\n", "unknown configuration key dnstap.sample", nil},
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
		case c.err == "" && !c.check(cfg.Dnstap):
			t.Errorf("%s: %+v", c.name, cfg.Dnstap)
		}
	}
}

// TestDnstapWriterLost: with no collector listening, the writer takes the
// exchanges out of the rings and counts their messages lost to the
// output, so that the rings do not fill with stale messages and the loss
// shows in ringdns_dnstap_dropped_total{reason="output"}. Writing to a
// collector is TestDnstapCapture's (e2e).
func TestDnstapWriterLost(t *testing.T) {
	cfg, err := ParseConfig([]byte("[dnstap]\nsocket = \""+filepath.Join(t.TempDir(), "none.sock")+"\"\n"), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	if errs := cfg.Dnstap.normalize(); len(errs) > 0 {
		t.Fatal(errs)
	}
	w, err := newDnstapWriter(cfg.Dnstap, slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := w.attach("tcp0", 1024)
	if err != nil {
		t.Fatal(err)
	}
	go w.run()
	peer := nic.AddrFrom(netip.MustParseAddrPort("198.18.0.2:4000"))
	q, r := make([]byte, 20), make([]byte, 40)
	for range 3 {
		ring.Push(time.Now(), &peer, nil, q, r, 0)
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.rings[0].lost.Load() != 6 {
		if time.Now().After(deadline) {
			t.Fatalf("lost %d messages after 10 s, want 6", w.rings[0].lost.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(w.stop)
	<-w.done
	if w.rings[0].sent.Load() != 0 || ring.Dropped() != 0 {
		t.Errorf("sent %d, dropped %d", w.rings[0].sent.Load(), ring.Dropped())
	}
}

// TestDnstapConfigPaths: relative socket and file paths are relative to
// the configuration file's directory, as zone files are.
func TestDnstapConfigPaths(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ key, want string }{
		{"socket = \"tap.sock\"", filepath.Join(dir, "tap.sock")},
		{"file = \"log/tap.fstrm\"", filepath.Join(dir, "log", "tap.fstrm")},
		{"file = \"/var/log/tap.fstrm\"", "/var/log/tap.fstrm"},
	} {
		path := filepath.Join(dir, "ringdns.toml")
		if err := os.WriteFile(path, []byte("[dnstap]\n"+c.key+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Dnstap.Socket + cfg.Dnstap.File; got != c.want {
			t.Errorf("%s: %q, want %q", c.key, got, c.want)
		}
	}
}

// TestDnstapHeirFile: the new process of an upgrade leaves the dnstap file
// the old process writes alone until it serves, then moves it aside,
// where the old process finishes its stream, and starts its own file at
// the configured path. It opened (and truncated) the file at once, under
// the old process still writing to it.
func TestDnstapHeirFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dnstap.fstrm")
	if err := os.WriteFile(path, []byte("the old process's stream"), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte("[dnstap]\nfile = \""+path+"\"\n"), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	if errs := cfg.Dnstap.normalize(); len(errs) > 0 {
		t.Fatal(errs)
	}
	w, err := newDnstapWriter(cfg.Dnstap, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "the old process's stream" {
		t.Fatalf("before serving, the new process changed the old one's file: %q", b)
	}
	w.takeFile()
	defer w.out.Close()
	aside, _ := filepath.Glob(path + ".upgraded-*")
	if len(aside) != 1 {
		t.Fatalf("files moved aside: %v, want one", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != "the old process's stream" {
		t.Errorf("the file moved aside holds %q", b)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := dnstap.AppendControl(nil, dnstap.ControlStart, dnstap.ContentType); !bytes.Equal(b, want) {
		t.Errorf("the new file starts %x, want START %x", b, want)
	}
}
