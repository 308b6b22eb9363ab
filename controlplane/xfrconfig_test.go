package controlplane

import (
	"net/netip"
	"strings"
	"testing"
)

func TestTransferConfig(t *testing.T) {
	const text = `
[server]
transfers-max = 3
journal-versions = 5
journal-bytes = 1000000

[[key]]
name = "XFR-Key"
algorithm = "hmac-sha512"
secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="

[[zone]]
origin = "example."
file = "example.zone"
primaries = ["192.0.2.1", "[2001:db8::1]:5300"]
key = "xfr-key"
allow-notify = ["198.18.0.0/15"]
zonemd = "require"

[[zone]]
origin = "example.net."
file = "net.zone"
allow-transfer = ["127.0.0.1", "::1/128 xfr-key"]
notify = ["127.0.0.1:5301", "[::1]:5302 xfr-key"]
`
	c, err := ParseConfig([]byte(text), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if s.TransfersMax != 3 || s.JournalVersions != 5 || s.JournalBytes != 1000000 {
		t.Errorf("server = %+v", s)
	}
	k, ok := c.TSIGKeys()["xfr-key."]
	if !ok || k.Algorithm != "hmac-sha512." {
		t.Errorf("keys = %+v", c.TSIGKeys())
	}
	a, b := c.Zones[0], c.Zones[1]
	if !a.Secondary() || b.Secondary() {
		t.Errorf("Secondary: %v %v", a.Secondary(), b.Secondary())
	}
	if want := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53"), netip.MustParseAddrPort("[2001:db8::1]:5300")}; len(a.PrimaryAddrs) != 2 || a.PrimaryAddrs[0] != want[0] || a.PrimaryAddrs[1] != want[1] {
		t.Errorf("primaries = %v", a.PrimaryAddrs)
	}
	if a.Key != "xfr-key." || a.ZONEMD != "require" || b.ZONEMD != "verify" {
		t.Errorf("zone a = %+v, b zonemd %q", a, b.ZONEMD)
	}
	if !Allows(a.NotifyACL, netip.MustParseAddr("198.19.1.1"), "") || Allows(a.NotifyACL, netip.MustParseAddr("192.0.2.9"), "") {
		t.Errorf("notify ACL %v", a.NotifyACL)
	}
	for _, c := range []struct {
		addr string
		key  string
		want bool
	}{
		{"127.0.0.1", "", true},
		{"::ffff:127.0.0.1", "", true},
		{"127.0.0.2", "", false},
		{"::1", "", false},
		{"::1", "xfr-key.", true},
		{"::1", "other.", false},
	} {
		if got := Allows(b.TransferACL, netip.MustParseAddr(c.addr), c.key); got != c.want {
			t.Errorf("Allows(transfer, %s, %q) = %v, want %v", c.addr, c.key, got, c.want)
		}
	}
	if len(b.NotifyTargets) != 2 || b.NotifyTargets[0].Key != "" || b.NotifyTargets[1].Key != "xfr-key." ||
		b.NotifyTargets[1].Addr != netip.MustParseAddrPort("[::1]:5302") {
		t.Errorf("notify = %+v", b.NotifyTargets)
	}
}

func TestTransferConfigErrors(t *testing.T) {
	const secret = `secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="`
	for _, c := range []struct{ text, want string }{
		{"[[key]]\nname = \"k\"\nalgorithm = \"hmac-md5\"\n" + secret, `algorithm "hmac-md5"`},
		{"[[key]]\nname = \"k\"\nsecret = \"!!\"", "not base64"},
		{"[[key]]\nname = \"k\"\nsecret = \"c2hvcnQ=\"", "at least 16"},
		{"[[key]]\nname = \"k\"\n" + secret + "\n[[key]]\nname = \"K.\"\n" + secret, "configured twice"},
		{"[[zone]]\norigin = \"a.\"\nfile = \"f\"\nkey = \"nokey\"", `key "nokey": no [[key]]`},
		{"[[zone]]\norigin = \"a.\"\nfile = \"f\"\nprimaries = [\"host.example\"]", `primaries "host.example"`},
		{"[[zone]]\norigin = \"a.\"\nfile = \"f\"\nallow-transfer = [\"10.0.0.1/8\"]", "host bits set"},
		{"[[zone]]\norigin = \"a.\"\nfile = \"f\"\nallow-transfer = [\"10.0.0.0/8 nokey\"]", "no [[key]] named nokey"},
		{"[[zone]]\norigin = \"a.\"\nfile = \"f\"\nallow-notify = [\"10.0.0.0/8\"]", "no primaries"},
		{"[[zone]]\norigin = \"a.\"\nfile = \"f\"\nzonemd = \"yes\"", `zonemd "yes"`},
		{"[[zone]]\norigin = \"a.\"\nfile = \"f\"\nnotify = [\"1.2.3.4:0\"]", "port 0"},
	} {
		cfg, err := ParseConfig([]byte(c.text), "t.toml")
		if err == nil {
			err = cfg.Normalize()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want it to contain %q", c.text, err, c.want)
		}
	}
}
