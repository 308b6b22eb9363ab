package controlplane

import (
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/nic"
)

// serverConfig is a normalised configuration serving one small zone on
// the given addresses, with its control socket in a temporary directory.
func serverConfig(t *testing.T, listen ...string) *Config {
	t.Helper()
	dir := t.TempDir()
	zf := filepath.Join(dir, "example.zone")
	writeFile(t, zf, zoneText("example.", 1))
	c := &Config{Server: ServerConfig{Listen: listen, CPUs: "0", Control: filepath.Join(dir, "c.sock")}}
	c.AddZone("example.", zf)
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNewServerFailureClosesSockets makes NewServer fail after it opened
// the UDP socket of an address (its TCP port is taken): it must return the
// error, not panic, and leave nothing open.
func TestNewServerFailureClosesSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()
	s, err := NewServer(serverConfig(t, busy), quietLog())
	if err == nil {
		s.Shutdown()
		t.Fatalf("NewServer on %s, whose TCP port is taken, succeeded", busy)
	}
	if s != nil || !strings.Contains(err.Error(), "listen tcp "+busy) {
		t.Errorf("NewServer = %v, %v; want nil and the TCP listen error", s, err)
	}
	// The UDP socket it had opened is closed again.
	pc, err := net.ListenPacket("udp", busy)
	if err != nil {
		t.Errorf("UDP %s still bound after NewServer failed: %v", busy, err)
	} else {
		pc.Close()
	}
}

// TestNewServerPortZero asks for port 0 on two addresses: each gets one
// port shared by its UDP sockets and its TCP listener.
func TestNewServerPortZero(t *testing.T) {
	s, err := NewServer(serverConfig(t, "127.0.0.1:0", "[::1]:0"), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if len(s.Listen()) != 2 {
		t.Fatalf("listening on %v, want two addresses", s.Listen())
	}
	for i, ap := range s.Listen() {
		if ap.Port() == 0 {
			t.Errorf("address %d: port not resolved: %v", i, ap)
		}
		if got := netip.MustParseAddrPort(s.tcp[i].srv.Addr().String()); got != ap {
			t.Errorf("TCP listens on %v, UDP on %v", got, ap)
		}
	}
	for _, w := range s.workers {
		if w.port.(interface{ LocalAddr() netip.AddrPort }).LocalAddr().String() != w.Listen {
			t.Errorf("worker %s on %v, listed as %s", w.Name, w.port, w.Listen)
		}
	}
}

// TestXDPStatsCarriesEveryField sets every counter of nic.XDPStats to a
// value of its own and checks that the control protocol's XDPStats carries
// each under the same name, and has no field nic lacks: a counter added to
// the port must not vanish from ringctl stats and the metrics because the
// conversion was not told about it.
func TestXDPStatsCarriesEveryField(t *testing.T) {
	var in nic.XDPStats
	iv := reflect.ValueOf(&in).Elem()
	for i := range iv.NumField() {
		iv.Field(i).SetUint(uint64(1000 + i))
	}
	out := xdpStats(in)
	ov := reflect.ValueOf(out).Elem()
	if iv.NumField() != ov.NumField() {
		t.Errorf("nic.XDPStats has %d fields, control.XDPStats %d", iv.NumField(), ov.NumField())
	}
	for i := range iv.NumField() {
		name := iv.Type().Field(i).Name
		f := ov.FieldByName(name)
		if !f.IsValid() {
			t.Errorf("control.XDPStats has no field %s", name)
			continue
		}
		if got, want := f.Uint(), iv.Field(i).Uint(); got != want {
			t.Errorf("%s: %d after the conversion, want %d", name, got, want)
		}
	}
}
