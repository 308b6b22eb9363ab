package dataplane

import (
	"net/netip"
)

// HandoffCookie judges the COOKIE option of a message the workers handed
// off to the control plane (a NOTIFY, an IXFR over UDP), data being the
// option's data as the message carried it and client the address it came
// from, and returns the verdict and the data of the COOKIE option the reply
// carries: the client cookie and a server cookie, echoed when it is valid
// and recent, made anew otherwise (RFC 7873 section 5.2, RFC 9018). The
// option is nil when cookies are off (c nil or without secrets) and for
// CookieMalformed, which the caller answers FORMERR (RFC 7873 section
// 5.2.2). It is the workers' own check, on a copy of the option: the
// control plane's replies carry the same cookies the workers' do.
func (c *Cookies) HandoffCookie(data []byte, client netip.Addr) (CookieVerdict, []byte) {
	if c == nil || !client.IsValid() {
		return CookieNone, nil
	}
	var qy query
	qy.cookieLen = -1
	if cookieLenValid(len(data)) {
		qy.cookieLen = int8(len(data))
		copy(qy.cookie[:], data)
	}
	ip := client.Unmap()
	raw := ip.AsSlice()
	v, _ := c.check(&qy, raw)
	return v, qy.replyCookie()
}
