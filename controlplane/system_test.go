package controlplane

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/nic"
)

// The systems ringdns builds for, as package nic describes them.
var (
	linuxSystem   = systemTraits{"linux", true, true, true}
	freebsdSystem = systemTraits{"freebsd", true, true, false}
	darwinSystem  = systemTraits{"darwin", false, false, false}
)

// asSystem makes the package see sys as the system it runs on until the
// test ends.
func asSystem(t *testing.T, sys systemTraits) {
	old := system
	system = sys
	t.Cleanup(func() { system = old })
}

// TestNormalizeOnEachSystem checks what Normalize, and so ringdns check,
// refuses on each system: AF_XDP everywhere but Linux, a CPU list where
// threads cannot be pinned (macOS).
func TestNormalizeOnEachSystem(t *testing.T) {
	for _, c := range []struct {
		system  systemTraits
		cpus    string
		xdp     bool
		wantErr string // "" for none
	}{
		{linuxSystem, "0-1", true, ""},
		{freebsdSystem, "0-1", false, ""},
		{freebsdSystem, "", true, "AF_XDP needs Linux, and this is freebsd"},
		{darwinSystem, "", false, ""},
		{darwinSystem, "0", false, `server.cpus "0": darwin cannot pin threads to CPUs`},
		{darwinSystem, "", true, "AF_XDP needs Linux, and this is darwin"},
	} {
		asSystem(t, c.system)
		cfg := &Config{Server: ServerConfig{CPUs: c.cpus}, Zones: []ZoneConfig{{Origin: "example.", File: "example.zone"}}}
		if c.xdp {
			cfg.XDP = &XDPConfig{Interface: "eth0"}
		}
		err := cfg.Normalize()
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s, cpus %q, xdp %v: %v", c.system.name, c.cpus, c.xdp, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s, cpus %q, xdp %v: %v, want an error saying %q", c.system.name, c.cpus, c.xdp, err, c.wantErr)
		case c.xdp && !c.system.hasXDP && !errors.Is(err, nic.ErrXDPNeedsLinux):
			t.Errorf("%s: %v does not wrap nic.ErrXDPNeedsLinux", c.system.name, err)
		}
	}
}

// TestSocketWorkersOnEachSystem checks the socket workers NewServer opens
// on each system, and that they answer: one per CPU of the list, pinned,
// where threads can be pinned and the kernel spreads an address over its
// sockets; one unpinned worker per address on macOS, said once in the log.
func TestSocketWorkersOnEachSystem(t *testing.T) {
	for _, c := range []struct {
		system  systemTraits
		cpus    string
		want    []int // the CPU of each worker of an address
		logLine bool
	}{
		{linuxSystem, "0", []int{0}, false},
		{freebsdSystem, "0", []int{0}, false},
		{darwinSystem, "", []int{-1}, true},
	} {
		t.Run(c.system.name, func(t *testing.T) {
			asSystem(t, c.system)
			dir := t.TempDir()
			zf := filepath.Join(dir, "example.zone")
			writeFile(t, zf, zoneText("example.", 1))
			cfg := &Config{Server: ServerConfig{Listen: []string{"127.0.0.1:0", "[::1]:0"}, CPUs: c.cpus, Control: filepath.Join(dir, "c.sock")}}
			cfg.AddZone("example.", zf)
			if err := cfg.Normalize(); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			s, err := NewServer(cfg, slog.New(slog.NewTextHandler(&logged, nil)))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Run() }()
			defer func() {
				s.Shutdown()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			for _, ap := range s.Listen() {
				var cpus []int
				for _, w := range s.workers {
					if w.Listen == ap.String() {
						cpus = append(cpus, w.CPU)
					}
				}
				if !slices.Equal(cpus, c.want) {
					t.Errorf("%s: workers on CPUs %v, want %v", ap, cpus, c.want)
				}
				askSOA(t, ap)
			}
			if n := strings.Count(logged.String(), "one unpinned socket worker per listen address"); n != map[bool]int{true: 1}[c.logLine] {
				t.Errorf("the unpinned workers are logged %d times, want %v:\n%s", n, c.logLine, logged.String())
			}
		})
	}
}

// askSOA queries the example zone's SOA over UDP at ap and fails t unless
// it is answered.
func askSOA(t *testing.T, ap netip.AddrPort) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("example.", dns.TypeSOA)
	cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := cl.Exchange(m, ap.String())
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("SOA query to %s: %v, %v", ap, r, err)
	}
}
