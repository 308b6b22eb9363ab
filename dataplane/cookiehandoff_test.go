package dataplane

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// TestHandoffCookie: the control plane's check of a handed-off message's
// COOKIE option gives the workers' verdicts and reply options: a client
// cookie alone gets a server cookie made for its address, which is valid
// when it comes back from there (and echoed as it came), invalid from
// another address; an option of a length no cookie has is malformed and
// gets no option; with cookies off nothing is judged.
func TestHandoffCookie(t *testing.T) {
	c := NewCookies()
	c.Set(&CookieSecrets{Current: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}})
	client := netip.MustParseAddr("198.18.0.2")
	cc := []byte("client01")

	v, opt := c.HandoffCookie(cc, client)
	if v != CookieClientOnly || len(opt) != cookieReplyLen || !bytes.Equal(opt[:8], cc) || opt[8] != cookieVersion {
		t.Fatalf("client cookie alone: %v, option %x; want client-only and the client cookie with a version 1 server cookie", v, opt)
	}
	full := bytes.Clone(opt)
	v, opt = c.HandoffCookie(full, client)
	if v != CookieValid || !bytes.Equal(opt, full) {
		t.Errorf("the server cookie back from its client: %v, option %x; want valid, echoed %x", v, opt, full)
	}
	// The same address mapped into IPv6, as a dual-stack socket gives it.
	if v, _ := c.HandoffCookie(full, netip.MustParseAddr("::ffff:198.18.0.2")); v != CookieValid {
		t.Errorf("the server cookie from the IPv4-mapped address: %v, want valid", v)
	}
	v, opt = c.HandoffCookie(full, netip.MustParseAddr("198.18.0.3"))
	if v != CookieInvalid || len(opt) != cookieReplyLen || bytes.Equal(opt, full) {
		t.Errorf("the server cookie from another address: %v, option %x; want invalid and a new server cookie", v, opt)
	}
	for _, n := range []int{1, 7, 9, 15, 41} {
		if v, opt := c.HandoffCookie(make([]byte, n), client); v != CookieMalformed || opt != nil {
			t.Errorf("an option of %d bytes: %v, option %x; want malformed, none", n, v, opt)
		}
	}
	// A server cookie made two hours ago is expired.
	old := bytes.Clone(full)
	c.Tick(time.Now().Add(2 * time.Hour))
	if v, _ := c.HandoffCookie(old, client); v != CookieInvalid {
		t.Errorf("a server cookie two hours old: %v, want invalid", v)
	}
	off := NewCookies()
	if v, opt := off.HandoffCookie(cc, client); v != CookieNone || opt != nil {
		t.Errorf("cookies off: %v, option %x; want none", v, opt)
	}
	var none *Cookies
	if v, opt := none.HandoffCookie(cc, client); v != CookieNone || opt != nil {
		t.Errorf("no Cookies: %v, option %x; want none", v, opt)
	}
}
