package privdrop

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

const statusText = `Name:	ringdns
Umask:	0022
State:	S (sleeping)
Uid:	65534	65534	65534	65534
Gid:	65534	65534	65534	65534
FDSize:	64
Groups:	65534 
CapInh:	0000000000000000
CapPrm:	0000000000000400
CapEff:	0000000000000400
CapBnd:	0000000000000400
CapAmb:	0000000000000000
NoNewPrivs:	1
Seccomp:	0
`

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       string // Creds.String(), or the error
	}{
		{"switched", statusText,
			"uid [65534 65534 65534 65534] gid [65534 65534 65534 65534] groups [65534] CapEff CAP_NET_BIND_SERVICE CapPrm CAP_NET_BIND_SERVICE CapInh none CapAmb none CapBnd 0x400 NoNewPrivs true"},
		{"root", strings.NewReplacer("65534", "0", "0000000000000400", "000001ffffffffff", "NoNewPrivs:\t1", "NoNewPrivs:\t0").Replace(statusText),
			"uid [0 0 0 0] gid [0 0 0 0] groups [0] CapEff " + CapSet(1<<41-1).String() + " CapPrm " + CapSet(1<<41-1).String() + " CapInh none CapAmb none CapBnd 0x1ffffffffff NoNewPrivs false"},
		{"no CapAmb", strings.Replace(statusText, "CapAmb:\t0000000000000000\n", "", 1), "status: no CapAmb line"},
		{"three uids", strings.Replace(statusText, "Uid:\t65534\t65534\t65534\t65534", "Uid:\t1\t2\t3", 1), `status: Uid: "1\t2\t3": want four ids`},
		{"bad set", strings.Replace(statusText, "CapEff:\t0000000000000400", "CapEff:\tzz", 1), "status: CapEff: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseStatus(bufio.NewScanner(strings.NewReader(tc.text)), "status")
			got := c.String()
			if err != nil {
				got = err.Error()
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCapSet(t *testing.T) {
	s := Caps(CapNetRaw, CapNetAdmin, CapBPF)
	if s != 1<<12|1<<13|1<<39 || !s.Has(CapBPF) || s.Has(CapIPCLock) {
		t.Errorf("Caps = %#x", uint64(s))
	}
	if got := s.String(); got != "CAP_NET_ADMIN CAP_NET_RAW CAP_BPF" {
		t.Errorf("String = %q", got)
	}
	if got := CapSet(0).String(); got != "none" {
		t.Errorf("empty String = %q", got)
	}
	if p, err := ParseCapSet("000001ffffffffff"); err != nil || p != 1<<41-1 {
		t.Errorf("ParseCapSet = %#x, %v", uint64(p), err)
	}
}

// TestLookup uses Debian's nobody (65534) and nogroup, and root, which
// every Debian system has.
func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		user, group string
		uid, gid    int
		err         error  // errors.Is
		msg         string // in the error
	}{
		{user: "nobody", uid: 65534, gid: 65534},
		{user: "65534", uid: 65534, gid: 65534},
		{user: "nobody", group: "nogroup", uid: 65534, gid: 65534},
		{user: "nobody", group: "0", uid: 65534, gid: 0},
		{user: "4242424", group: "nogroup", uid: 4242424, gid: 65534},
		{user: "4242424", group: "4242", uid: 4242424, gid: 4242},
		{user: "4242424", err: ErrUnknownUser, msg: "set server.group too"},
		{user: "ringdns-no-such-user", err: ErrUnknownUser, msg: "useradd --system"},
		{user: "nobody", group: "ringdns-no-such-group", err: ErrUnknownGroup, msg: "groupadd --system"},
		{user: "root", msg: "is root (uid 0)"},
		{user: "0", msg: "is root (uid 0)"},
		{user: "", msg: "server.user is empty"},
	} {
		id, err := Lookup(tc.user, tc.group)
		switch {
		case tc.msg != "":
			if err == nil || !strings.Contains(err.Error(), tc.msg) || tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Lookup(%q, %q) = %v, %v; want an error with %q", tc.user, tc.group, id, err, tc.msg)
			}
		case err != nil:
			t.Errorf("Lookup(%q, %q): %v", tc.user, tc.group, err)
		case id.UID != tc.uid || id.GID != tc.gid:
			t.Errorf("Lookup(%q, %q) = %v; want uid %d gid %d", tc.user, tc.group, id, tc.uid, tc.gid)
		default:
			found := false
			for _, g := range id.Groups {
				found = found || g == tc.gid
			}
			if !found {
				t.Errorf("Lookup(%q, %q): groups %v lack the gid %d", tc.user, tc.group, id.Groups, tc.gid)
			}
		}
	}
}
