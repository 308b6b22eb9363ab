package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/zone"
)

// ErrCatalogVersion is returned for a catalog zone whose schema version is
// missing or not one this consumer understands (RFC 9432 section 4.2.1).
var ErrCatalogVersion = errors.New("catalog zone schema version")

// catalogMember is one member zone listed in a catalog zone (RFC 9432
// section 4.1): its name and the unique label of the PTR record that lists
// it, which changes when the producer means a fresh start of the member.
type catalogMember struct {
	Origin string // canonical: lowercase, final dot
	ID     string // the unique label, lowercase
	Group  string // the group property, "" when none (section 4.4.2)
}

// catalogMembers reads the member list of a catalog zone. The rules it
// applies are RFC 9432's for a consumer:
//   - version.CATZ must have exactly one TXT record, "2"; anything else
//     means the producer speaks a schema this consumer does not, and the
//     catalog is not processed at all (section 4.2.1);
//   - each member is one PTR record at UNIQUE-ID.zones.CATZ; a unique label
//     with more than one PTR record lists no member (section 4.1), and is
//     reported;
//   - a member zone listed under two unique labels is taken once, from the
//     label first in canonical order, and the clash is reported (section
//     5.4 asks consumers to ignore the second instance);
//   - the group property (a TXT record at group.UNIQUE-ID.zones.CATZ) is
//     kept; other properties and unknown records are ignored (section 4.4).
//
// The members are returned sorted by name; warnings name what was ignored.
func catalogMembers(z *zone.Zone) ([]catalogMember, []string, error) {
	origin := CanonicalOrigin(z.Origin())
	versionName := wireName("version." + origin)
	zonesSuffix := wireName("zones." + origin)

	var versions []string
	ptrs := map[string][]string{} // unique label -> member names
	groups := map[string]string{}
	var warnings []string
	err := z.Walk(func(r *zone.Record) error {
		switch {
		case bytes.Equal(r.Owner, versionName) && r.Type == dns.TypeTXT:
			versions = append(versions, txtText(r.Data))
		case r.Type == dns.TypePTR || r.Type == dns.TypeTXT:
			labels, ok := labelsBelow(r.Owner, zonesSuffix)
			if !ok {
				return nil
			}
			switch {
			case len(labels) == 1 && r.Type == dns.TypePTR:
				target, _, err := dns.UnpackDomainName(r.Data, 0)
				if err != nil {
					warnings = append(warnings, fmt.Sprintf("member %s: bad PTR: %v", labels[0], err))
					return nil
				}
				ptrs[labels[0]] = append(ptrs[labels[0]], CanonicalOrigin(target))
			case len(labels) == 2 && labels[0] == "group" && r.Type == dns.TypeTXT:
				groups[labels[1]] = txtText(r.Data)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(versions) != 1 || versions[0] != "2" {
		return nil, nil, fmt.Errorf("%w: catalog %s has version TXT %q; this consumer understands version \"2\" (RFC 9432) only", ErrCatalogVersion, origin, versions)
	}
	ids := make([]string, 0, len(ptrs))
	for id := range ptrs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	byName := map[string]string{}
	var out []catalogMember
	for _, id := range ids {
		names := ptrs[id]
		if len(names) != 1 {
			warnings = append(warnings, fmt.Sprintf("member %s has %d PTR records, not one: ignored", id, len(names)))
			continue
		}
		name := names[0]
		if _, ok := dns.IsDomainName(name); !ok || name == "." {
			warnings = append(warnings, fmt.Sprintf("member %s names %q, not a zone: ignored", id, name))
			continue
		}
		if prev, dup := byName[name]; dup {
			warnings = append(warnings, fmt.Sprintf("member %s names %s, already listed as member %s: ignored", id, name, prev))
			continue
		}
		byName[name] = id
		out = append(out, catalogMember{Origin: name, ID: id, Group: groups[id]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out, warnings, nil
}

// wireName is the lowercase wire form of a canonical name.
func wireName(name string) []byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(strings.ToLower(dns.Fqdn(name)), buf, 0, nil, false)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// labelsBelow returns the labels of owner (lowercase wire) in front of
// suffix, leftmost first, and whether owner is strictly below suffix.
func labelsBelow(owner, suffix []byte) ([]string, bool) {
	if len(owner) <= len(suffix) || !bytes.Equal(owner[len(owner)-len(suffix):], suffix) {
		return nil, false
	}
	var labels []string
	for i := 0; i < len(owner)-len(suffix); {
		n := int(owner[i])
		if n == 0 || i+1+n > len(owner)-len(suffix) {
			return nil, false
		}
		labels = append(labels, strings.ToLower(string(owner[i+1:i+1+n])))
		i += 1 + n
	}
	return labels, true
}

// txtText joins the character strings of a TXT RDATA.
func txtText(rd []byte) string {
	var b strings.Builder
	for i := 0; i < len(rd); {
		n := int(rd[i])
		if i+1+n > len(rd) {
			break
		}
		b.Write(rd[i+1 : i+1+n])
		i += 1 + n
	}
	return b.String()
}
