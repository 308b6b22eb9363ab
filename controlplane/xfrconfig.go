package controlplane

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// ACLEntry is one entry of allow-transfer or allow-notify: a source prefix,
// and the TSIG key a message from it must be signed with ("" for none).
type ACLEntry struct {
	Prefix netip.Prefix
	Key    string // canonical key name (lowercase, final dot), or ""
}

// Remote is a server the zone sends to (a NOTIFY target): its address and
// the key that signs what is sent ("" for none).
type Remote struct {
	Addr netip.AddrPort
	Key  string
}

// TSIGKey is a normalised [[key]]: the name and algorithm as miekg/dns
// spells them (lowercase, final dot) and the secret still in base64, the
// form dns.Client.TsigSecret and dns.Server.TsigSecret take.
type TSIGKey struct {
	Name      string
	Algorithm string
	Secret    string
}

// tsigAlgorithms maps the algorithm names a [[key]] may use to miekg/dns's.
var tsigAlgorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// TSIGKeys returns the normalised [[key]] entries by canonical name. The
// configuration must have been normalised.
func (c *Config) TSIGKeys() map[string]TSIGKey {
	keys, _ := normalizeKeys(c.Keys)
	return keys
}

// normalizeKeys checks the [[key]] entries and returns them by canonical
// name.
func normalizeKeys(in []KeyConfig) (map[string]TSIGKey, []error) {
	keys := map[string]TSIGKey{}
	var errs []error
	for i, k := range in {
		if k.Name == "" {
			errs = append(errs, fmt.Errorf("key %d: name missing", i+1))
			continue
		}
		name := CanonicalOrigin(k.Name)
		if _, ok := dns.IsDomainName(name); !ok {
			errs = append(errs, fmt.Errorf("key %q: name is not a domain name", k.Name))
			continue
		}
		if _, dup := keys[name]; dup {
			errs = append(errs, fmt.Errorf("key %s: configured twice", name))
			continue
		}
		alg := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(k.Algorithm)), ".")
		if alg == "" {
			alg = "hmac-sha256"
		}
		dnsAlg, ok := tsigAlgorithms[alg]
		if !ok {
			errs = append(errs, fmt.Errorf("key %s: algorithm %q: want hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224 or hmac-sha1", name, k.Algorithm))
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(k.Secret)
		switch {
		case k.Secret == "":
			errs = append(errs, fmt.Errorf("key %s: secret missing (base64, as tsig-keygen or keymgr -t print it)", name))
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("key %s: secret is not base64: %v", name, err))
			continue
		case len(raw) < 16:
			// RFC 8945 section 6 asks for keys as long as the hash's
			// output; shorter than 128 bits is a mistake, not a choice.
			errs = append(errs, fmt.Errorf("key %s: secret is %d bytes; use at least 16 (tsig-keygen makes 32)", name, len(raw)))
			continue
		}
		keys[name] = TSIGKey{Name: name, Algorithm: dnsAlg, Secret: k.Secret}
	}
	return keys, errs
}

// normalizeTransfers checks and parses the transfer settings of one zone.
func (z *ZoneConfig) normalizeTransfers(keys map[string]TSIGKey) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("zone %s: "+format, append([]any{z.Origin}, args...)...))
	}
	if z.Key != "" {
		k := CanonicalOrigin(z.Key)
		if _, ok := keys[k]; !ok {
			bad("key %q: no [[key]] of that name", z.Key)
		}
		z.Key = k
	}
	z.PrimaryAddrs = z.PrimaryAddrs[:0]
	for _, p := range z.Primaries {
		ap, err := ParseHostPort(p)
		if err != nil {
			bad("primaries %q: %v", p, err)
			continue
		}
		z.PrimaryAddrs = append(z.PrimaryAddrs, ap)
	}
	var err error
	if z.NotifyACL, err = ParseACL(z.AllowNotify, keys); err != nil {
		bad("allow-notify: %v", err)
	}
	if len(z.AllowNotify) > 0 && !z.Secondary() {
		bad("allow-notify is set, but the zone has no primaries: only a secondary zone takes NOTIFY")
	}
	if z.TransferACL, err = ParseACL(z.AllowTransfer, keys); err != nil {
		bad("allow-transfer: %v", err)
	}
	z.NotifyTargets = z.NotifyTargets[:0]
	for _, n := range z.Notify {
		f := strings.Fields(n)
		if len(f) == 0 || len(f) > 2 {
			bad("notify %q: want \"ADDR[:PORT] [KEY]\"", n)
			continue
		}
		ap, err := ParseHostPort(f[0])
		if err != nil {
			bad("notify %q: %v", n, err)
			continue
		}
		r := Remote{Addr: ap, Key: z.Key}
		if len(f) == 2 {
			r.Key = CanonicalOrigin(f[1])
			if _, ok := keys[r.Key]; !ok {
				bad("notify %q: no [[key]] named %s", n, f[1])
				continue
			}
		}
		z.NotifyTargets = append(z.NotifyTargets, r)
	}
	switch z.ZONEMD {
	case "":
		z.ZONEMD = "verify"
	case "verify", "require", "ignore":
	default:
		bad("zonemd %q: want verify, require or ignore", z.ZONEMD)
	}
	return errs
}

// ParseHostPort parses "ADDR", "ADDR:PORT" or "[ADDR6]:PORT"; a missing
// port is 53.
func ParseHostPort(s string) (netip.AddrPort, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("port 0")
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want ADDR, ADDR:PORT or [ADDR6]:PORT")
	}
	if a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("scoped addresses are not supported")
	}
	return netip.AddrPortFrom(a.Unmap(), 53), nil
}

// ParseACL parses the entries of an allow-transfer or allow-notify list.
// An entry is "PREFIX" or "ADDR" (a whole address), optionally followed by
// the name of a [[key]] that the message must be signed with:
//
//	"192.0.2.0/24"            unsigned or signed with any configured key
//	"2001:db8::/32 xfr-key"   signed with xfr-key, from that prefix
//	"0.0.0.0/0 xfr-key"       signed with xfr-key, from any IPv4 address
func ParseACL(entries []string, keys map[string]TSIGKey) ([]ACLEntry, error) {
	var out []ACLEntry
	for _, e := range entries {
		f := strings.Fields(e)
		if len(f) == 0 || len(f) > 2 {
			return nil, fmt.Errorf("%q: want \"PREFIX [KEY]\"", e)
		}
		var p netip.Prefix
		if strings.Contains(f[0], "/") {
			var err error
			if p, err = netip.ParsePrefix(f[0]); err != nil {
				return nil, fmt.Errorf("%q: %v", e, err)
			}
			if p != p.Masked() {
				return nil, fmt.Errorf("%q: host bits set; did you mean %s?", e, p.Masked())
			}
		} else {
			a, err := netip.ParseAddr(f[0])
			if err != nil {
				return nil, fmt.Errorf("%q: %v", e, err)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		ent := ACLEntry{Prefix: p}
		if len(f) == 2 {
			ent.Key = CanonicalOrigin(f[1])
			if _, ok := keys[ent.Key]; !ok {
				return nil, fmt.Errorf("%q: no [[key]] named %s", e, f[1])
			}
		}
		out = append(out, ent)
	}
	return out, nil
}

// Allows reports whether a message from addr, signed with a valid TSIG of
// key ("" when unsigned), matches an entry of the list. An entry without
// a key admits any message from its prefix whose signature, if any, was
// valid; an entry with a key admits only messages signed with that key.
// The caller has already verified the signature.
func Allows(acl []ACLEntry, addr netip.Addr, key string) bool {
	addr = addr.Unmap()
	for _, e := range acl {
		if e.Prefix.Contains(addr) && (e.Key == "" || e.Key == key) {
			return true
		}
	}
	return false
}
