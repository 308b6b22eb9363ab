package conformance

import (
	"bufio"
	"crypto"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Denial is the kind of authenticated denial of existence a zone is signed
// with.
type Denial int

const (
	// DenialNSEC chains the names with NSEC (RFC 4034 section 4).
	DenialNSEC Denial = iota
	// DenialNSEC3 chains hashed names with NSEC3 (RFC 5155), no opt-out,
	// no extra iterations and no salt, as RFC 9276 section 3.1 asks.
	DenialNSEC3
	// DenialNSEC3OptOut is NSEC3 with the opt-out flag set (RFC 5155
	// section 6) and no NSEC3 records for insecure delegations, nor for
	// empty non-terminals that lead only to them, with a short salt so that
	// a salted hash is served too.
	DenialNSEC3OptOut
)

// nsec3Salt is the salt of DenialNSEC3OptOut zones, in hex.
const nsec3Salt = "cafe"

// SignTools are the ldns programs a zone is signed with (Debian package
// ldnsutils).
type SignTools struct {
	Keygen   string // ldns-keygen
	Signzone string // ldns-signzone
	Verify   string // ldns-verify-zone
}

// FindSignTools looks the ldns programs up in PATH.
func FindSignTools() (SignTools, error) {
	var t SignTools
	for _, p := range []struct {
		name string
		dst  *string
	}{{"ldns-keygen", &t.Keygen}, {"ldns-signzone", &t.Signzone}, {"ldns-verify-zone", &t.Verify}} {
		path, err := exec.LookPath(p.name)
		if err != nil {
			return t, fmt.Errorf("%s is not installed (Debian package ldnsutils): %w", p.name, err)
		}
		*p.dst = path
	}
	return t, nil
}

// signKeys is a zone's key pair as ldns-keygen writes it: base paths
// without the .key or .private extension.
type signKeys struct {
	ksk, zsk string
}

// SignZones signs copies of zones into dir with fresh keys and returns the
// signed zones, in the order given. Signatures are valid from an hour before
// now to thirty days after it, so that neither server's clock nor a slow run
// matters. A zone served beside its parent is signed first and the parent's
// DS records for it are replaced by the DS of its new key, so that the set is
// a chain of trust as it would be in service. Every signed file is checked
// with ldns-verify-zone before it is served.
func SignZones(tools SignTools, dir string, zones []*Zone, denial Denial, now time.Time) ([]*Zone, error) {
	inception := now.Add(-time.Hour)
	expiration := now.Add(30 * 24 * time.Hour)
	// Deepest origins first: children before parents.
	order := make([]int, len(zones))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		return dns.CountLabel(zones[order[i]].Origin) > dns.CountLabel(zones[order[j]].Origin)
	})
	childDS := map[string][]dns.RR{} // By child origin.
	signed := make([]*Zone, len(zones))
	for _, i := range order {
		z := zones[i]
		keys, err := generateKeys(tools, dir, z.Origin)
		if err != nil {
			return nil, err
		}
		input, err := withChildDS(dir, z, zones, childDS)
		if err != nil {
			return nil, err
		}
		out := filepath.Join(dir, strings.TrimSuffix(z.Origin, ".")+".signed")
		args := []string{
			"-i", strconv.FormatInt(inception.Unix(), 10),
			"-e", strconv.FormatInt(expiration.Unix(), 10),
			"-o", z.Origin, "-f", out,
		}
		switch denial {
		case DenialNSEC3:
			args = append(args, "-n", "-t", "0")
		case DenialNSEC3OptOut:
			args = append(args, "-n", "-t", "0", "-s", nsec3Salt, "-p")
		}
		args = append(args, input, keys.ksk, keys.zsk)
		if out, err := exec.Command(tools.Signzone, args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("signing %s: %v\n%s", z.Origin, err, out)
		}
		if denial == DenialNSEC3OptOut {
			if err := optOut(out, z, keys, inception, expiration); err != nil {
				return nil, fmt.Errorf("opt-out for %s: %w", z.Origin, err)
			}
		}
		if out, err := exec.Command(tools.Verify, out).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ldns-verify-zone rejects the signed %s: %v\n%s", z.Origin, err, out)
		}
		sz, err := LoadZone(z.Origin, out)
		if err != nil {
			return nil, err
		}
		signed[i] = sz
		ds, err := readRRs(keys.ksk + ".ds")
		if err != nil {
			return nil, err
		}
		childDS[z.Origin] = ds
	}
	return signed, nil
}

// generateKeys makes a key-signing and a zone-signing key (ECDSA P-256,
// algorithm 13: small signatures keep the replies near the sizes of the
// unsigned zones' edge cases) for origin in dir.
func generateKeys(tools SignTools, dir, origin string) (signKeys, error) {
	var k signKeys
	for _, key := range []struct {
		dst  *string
		args []string
	}{{&k.ksk, []string{"-a", "ECDSAP256SHA256", "-k", origin}}, {&k.zsk, []string{"-a", "ECDSAP256SHA256", origin}}} {
		cmd := exec.Command(tools.Keygen, key.args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return k, fmt.Errorf("ldns-keygen for %s: %w", origin, err)
		}
		*key.dst = filepath.Join(dir, strings.TrimSpace(string(out)))
	}
	return k, nil
}

// withChildDS returns the file to sign for z: its own file, or, when a zone
// already signed is its child, a copy in dir whose DS records at that child
// are the child's real ones.
func withChildDS(dir string, z *Zone, zones []*Zone, childDS map[string][]dns.RR) (string, error) {
	var children []string
	for _, c := range zones {
		if c.Origin != z.Origin && dns.IsSubDomain(z.Origin, c.Origin) && childDS[c.Origin] != nil {
			children = append(children, c.Origin)
		}
	}
	abs, err := filepath.Abs(z.Path)
	if err != nil {
		return "", err
	}
	if len(children) == 0 {
		return abs, nil
	}
	var rrs []dns.RR
	for _, rr := range z.Records {
		h := rr.Header()
		if h.Rrtype == dns.TypeDS && childDS[strings.ToLower(h.Name)] != nil {
			continue
		}
		rrs = append(rrs, rr)
	}
	for _, c := range children {
		for _, ds := range childDS[c] {
			ds = dns.Copy(ds)
			// The .ds file has no TTL; the parent's default applies.
			ds.Header().Ttl = z.Records[0].Header().Ttl
			rrs = append(rrs, ds)
		}
	}
	path := filepath.Join(dir, strings.TrimSuffix(z.Origin, ".")+".unsigned")
	return path, writeZone(path, rrs)
}

// optOut turns the NSEC3 chain that ldns-signzone -p writes (every
// delegation covered, the opt-out flag merely set) into a real opt-out chain:
// the NSEC3 records of insecure delegations, and of empty non-terminals that
// lead only to insecure delegations, are removed (RFC 5155 sections 7.1 and
// 6), the remaining records are linked again and every NSEC3 is signed anew
// with the zone-signing key.
func optOut(path string, unsigned *Zone, keys signKeys, inception, expiration time.Time) error {
	zsk, signer, err := readKey(keys.zsk)
	if err != nil {
		return err
	}
	signed, err := LoadZone(unsigned.Origin, path)
	if err != nil {
		return err
	}
	omit := map[string]bool{}
	for _, name := range optedOut(unsigned) {
		omit[strings.ToLower(dns.HashName(name, dns.SHA1, 0, nsec3Salt))] = true
	}
	var rest []dns.RR
	var chain []*dns.NSEC3
	for _, rr := range signed.Records {
		switch r := rr.(type) {
		case *dns.NSEC3:
			if !omit[strings.ToLower(firstLabel(r.Hdr.Name))] {
				chain = append(chain, r)
			}
		case *dns.RRSIG:
			if r.TypeCovered != dns.TypeNSEC3 {
				rest = append(rest, r)
			}
		default:
			rest = append(rest, rr)
		}
	}
	if len(chain) == 0 {
		return errors.New("no NSEC3 records left")
	}
	// Base32hex keeps the order of the hashes, so the owners' canonical
	// order is the chain's order.
	sort.Slice(chain, func(i, j int) bool {
		return strings.ToLower(chain[i].Hdr.Name) < strings.ToLower(chain[j].Hdr.Name)
	})
	for i, n := range chain {
		n.NextDomain = strings.ToUpper(firstLabel(chain[(i+1)%len(chain)].Hdr.Name))
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Ttl: n.Hdr.Ttl},
			Algorithm:  zsk.Algorithm,
			Inception:  uint32(inception.Unix()),
			Expiration: uint32(expiration.Unix()),
			KeyTag:     zsk.KeyTag(),
			SignerName: unsigned.Origin,
		}
		if err := sig.Sign(signer, []dns.RR{n}); err != nil {
			return fmt.Errorf("signing %s: %w", n.Hdr.Name, err)
		}
		rest = append(rest, n, sig)
	}
	return writeZone(path, rest)
}

// optedOut returns the names an opt-out NSEC3 chain leaves out: insecure
// delegations (NS without DS) and the empty non-terminals above them with
// nothing else authoritative below.
func optedOut(z *Zone) []string {
	ix := indexZone(z)
	insecure := func(key string) bool {
		return ix.isCut(key) && !ix.belowCut(key) && !containsType(ix.owners[key].types, dns.TypeDS)
	}
	var out []string
	for _, key := range ix.keys {
		if insecure(key) {
			out = append(out, key)
		}
	}
	for _, ent := range ix.ents {
		if ix.belowCut(ent) {
			continue
		}
		onlyInsecure := true
		for _, key := range ix.keys {
			if dns.IsSubDomain(ent, key) && !ix.belowCut(key) && !insecure(key) {
				onlyInsecure = false
				break
			}
		}
		if onlyInsecure {
			out = append(out, ent)
		}
	}
	return out
}

// readKey reads a key pair written by ldns-keygen from its base path.
func readKey(base string) (*dns.DNSKEY, crypto.Signer, error) {
	rrs, err := readRRs(base + ".key")
	if err != nil {
		return nil, nil, err
	}
	key, ok := rrs[0].(*dns.DNSKEY)
	if !ok || len(rrs) != 1 {
		return nil, nil, fmt.Errorf("%s.key: want one DNSKEY", base)
	}
	f, err := os.Open(base + ".private")
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	priv, err := key.ReadPrivateKey(f, base+".private")
	if err != nil {
		return nil, nil, err
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s.private: %T cannot sign", base, priv)
	}
	return key, signer, nil
}

// readRRs parses a file of records with absolute names, such as the .key
// and .ds files of ldns-keygen.
func readRRs(path string) ([]dns.RR, error) {
	z, err := LoadZone(".", path)
	if err != nil {
		return nil, err
	}
	if len(z.Records) == 0 {
		return nil, fmt.Errorf("%s: no records", path)
	}
	return z.Records, nil
}

// writeZone writes records one a line with absolute names, a master file
// both servers and ldns read.
func writeZone(path string, rrs []dns.RR) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, rr := range rrs {
		if r, ok := rr.(*dns.RFC3597); ok && r.Hdr.Class == dns.ClassINET {
			// miekg/dns writes an unknown type's class as CLASS1, which
			// Knot DNS does not parse; both read IN (RFC 3597 section 5).
			fmt.Fprintf(w, "%s\t%d\tIN\tTYPE%d\t\\# %d %s\n", r.Hdr.Name, r.Hdr.Ttl, r.Hdr.Rrtype, len(r.Rdata)/2, r.Rdata)
			continue
		}
		fmt.Fprintln(w, rr.String())
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
