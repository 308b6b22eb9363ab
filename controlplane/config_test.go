package controlplane

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	const full = `
[server]
listen = ["127.0.0.1:5300", "[::1]:5300"]
cpus = "0-1,3"
udp-size = 1400
nsid = "ns-a"
identity = "a.example"
version = "x"
control = "/tmp/x.sock"
metrics = "127.0.0.1:9153"
tcp-idle-timeout = "3s"
tcp-message-timeout = "250ms"
tcp-max-connections = 10
tcp-max-connections-per-address = 2
tcp-max-connections-per-prefix = 5
batch = 32
update-memory-hold = "30s"
update-ahead-keep = true

[[zone]]
origin = "Example.COM"
file = "a.zone"

[[zone]]
origin = "example.net."
file = "/abs/b.zone"

[xdp]
interface = "veth0"
queues = [0, 1]
mode = "native"
zero-copy = "off"
replace = true
busy-poll = true
rx-ring-size = 16384
`
	c, err := ParseConfig([]byte(full), "full.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if !reflect.DeepEqual(s.Listen, []string{"127.0.0.1:5300", "[::1]:5300"}) || s.CPUs != "0-1,3" || s.UDPSize != 1400 ||
		s.NSID != "ns-a" || s.Identity != "a.example" || s.Version != "x" || s.Control != "/tmp/x.sock" ||
		s.Metrics != "127.0.0.1:9153" || time.Duration(s.TCPIdleTimeout) != 3*time.Second ||
		time.Duration(s.TCPMessageTimeout) != 250*time.Millisecond || s.TCPMaxConnections != 10 ||
		s.TCPMaxPerAddress != 2 || s.TCPMaxPerPrefix != 5 || s.Batch != 32 ||
		time.Duration(s.UpdateMemoryHold) != 30*time.Second || !s.UpdateAheadKeep {
		t.Errorf("server = %+v", s)
	}
	if len(c.Zones) != 2 || c.Zones[0].Origin != "example.com." || c.Zones[1].Origin != "example.net." {
		t.Errorf("zones = %+v", c.Zones)
	}
	x := c.XDP
	if x == nil || x.Interface != "veth0" || !reflect.DeepEqual(x.Queues, []int{0, 1}) || x.Mode != "driver" ||
		x.ZeroCopy != "off" || !x.Replace || !x.BusyPoll || x.RxRingSize != 16384 {
		t.Errorf("xdp = %+v", x)
	}
}

// TestXDPRxRingSizeDefault: an [xdp] table without rx-ring-size gets the
// default, which absorbs tens of milliseconds at the rates of this VM.
func TestXDPRxRingSizeDefault(t *testing.T) {
	c, err := ParseConfig([]byte("[xdp]\ninterface = \"veth0\"\n"), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if c.XDP.RxRingSize != DefaultXDPRxRingSize {
		t.Errorf("xdp.rx-ring-size = %d, want the default %d", c.XDP.RxRingSize, DefaultXDPRxRingSize)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte("[[zone]]\norigin = \"a.\"\nfile = \"a.zone\"\n"), "min.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if !reflect.DeepEqual(s.Listen, DefaultListen) || s.UDPSize != DefaultUDPSize ||
		time.Duration(s.TCPIdleTimeout) != DefaultTCPIdleTimeout || s.TCPMaxConnections != DefaultTCPMaxConnections ||
		time.Duration(s.TCPMessageTimeout) != DefaultTCPMessageTimeout ||
		s.TCPMaxPerAddress != DefaultTCPMaxPerAddress || s.TCPMaxPerPrefix != DefaultTCPMaxPerPrefix ||
		s.Batch != DefaultBatch || s.Control == "" || c.XDP != nil ||
		time.Duration(s.UpdateMemoryHold) != DefaultUpdateMemoryHold || s.UpdateAheadKeep {
		t.Errorf("defaults = %+v", s)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"unknown server key", "[server]\nlisten = []\nlsiten = [\"x\"]\n", "server.lsiten"},
		{"unknown top-level table", "[sevrer]\nlisten = []\n", "sevrer"},
		{"unknown zone key", "[[zone]]\norigin = \"a.\"\nfiel = \"a\"\n", "zone.fiel"},
		{"unknown xdp key", "[xdp]\ninterface = \"lo\"\nqueue = 1\n", "xdp.queue"},
		{"syntax error has a line", "[server]\n\nlisten = [\n", "bad.toml:"},
		{"type error", "[server]\nudp-size = \"big\"\n", "udp-size"},
		{"bad duration", "[server]\ntcp-idle-timeout = \"10 parsecs\"\n", "tcp-idle-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.toml), "bad.toml")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestNormalizeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"listen without port", "[server]\nlisten = [\"127.0.0.1\"]\n", "server.listen"},
		{"bad cpus", "[server]\ncpus = \"1-0\"\n", "server.cpus"},
		{"udp-size too small", "[server]\nudp-size = 100\n", "server.udp-size"},
		{"bad metrics", "[server]\nmetrics = \"localhost\"\n", "server.metrics"},
		{"negative message timeout", "[server]\ntcp-message-timeout = \"-1s\"\n", "server.tcp-message-timeout"},
		{"negative per-address bound", "[server]\ntcp-max-connections-per-address = -1\n", "server.tcp-max-connections-per-address"},
		{"negative per-prefix bound", "[server]\ntcp-max-connections-per-prefix = -1\n", "server.tcp-max-connections-per-prefix"},
		{"zone without file", "[[zone]]\norigin = \"a.\"\n", "file missing"},
		{"zone without origin", "[[zone]]\nfile = \"a\"\n", "origin missing"},
		{"duplicate zone", "[[zone]]\norigin = \"A.\"\nfile = \"a\"\n[[zone]]\norigin = \"a\"\nfile = \"b\"\n", "configured twice"},
		{"xdp without interface", "[xdp]\nmode = \"auto\"\n", "xdp.interface"},
		{"bad xdp mode", "[xdp]\ninterface = \"lo\"\nmode = \"fast\"\n", "xdp.mode"},
		{"bad zero-copy", "[xdp]\ninterface = \"lo\"\nzero-copy = \"maybe\"\n", "xdp.zero-copy"},
		{"rx ring not a power of two", "[xdp]\ninterface = \"lo\"\nrx-ring-size = 5000\n", "xdp.rx-ring-size 5000: want a power of two"},
		{"rx ring too small", "[xdp]\ninterface = \"lo\"\nrx-ring-size = 32\n", "xdp.rx-ring-size 32"},
		{"rx ring too large", "[xdp]\ninterface = \"lo\"\nrx-ring-size = 131072\n", "xdp.rx-ring-size 131072"},
		{"negative rx ring", "[xdp]\ninterface = \"lo\"\nrx-ring-size = -8192\n", "xdp.rx-ring-size -8192"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.toml), "n.toml")
			if err != nil {
				t.Fatal(err)
			}
			err = c.Normalize()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Normalize() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigRelativeZones(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.toml")
	if err := os.WriteFile(p, []byte("[[zone]]\norigin = \"a.\"\nfile = \"z/a.zone\"\n[[zone]]\norigin = \"b.\"\nfile = \"/b.zone\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Zones[0].File != filepath.Join(dir, "z/a.zone") || c.Zones[1].File != "/b.zone" {
		t.Errorf("zone files = %q, %q", c.Zones[0].File, c.Zones[1].File)
	}
}

func TestAddZone(t *testing.T) {
	c := &Config{Zones: []ZoneConfig{{Origin: "a.", File: "1"}}}
	c.AddZone("A", "2")
	c.AddZone("b.", "3")
	want := []ZoneConfig{{Origin: "a.", File: "2"}, {Origin: "b.", File: "3"}}
	if !reflect.DeepEqual(c.Zones, want) {
		t.Errorf("zones = %+v, want %+v", c.Zones, want)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  bool
	}{
		{"0", []int{0}, false},
		{"0-1,3", []int{0, 1, 3}, false},
		{" 3, 1-2 ,1 ", []int{1, 2, 3}, false},
		{"5-5", []int{5}, false},
		{"2-1", nil, true},
		{"a", nil, true},
		{"-1", nil, true},
		{"1,", nil, true},
		{"1-", nil, true},
		{"0-5000", nil, true},
	} {
		got, err := ParseCPUList(tc.in)
		if (err != nil) != tc.err || (!tc.err && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	all, err := ParseCPUList("")
	if err != nil || len(all) == 0 {
		t.Errorf("ParseCPUList(\"\") = %v, %v; want the allowed CPUs", all, err)
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-1,3", "", "2-1", "1,,2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := ParseCPUList(s)
		if err != nil {
			return
		}
		for i := 1; i < len(cpus); i++ {
			if cpus[i] <= cpus[i-1] {
				t.Fatalf("ParseCPUList(%q) = %v: not sorted and distinct", s, cpus)
			}
		}
	})
}
