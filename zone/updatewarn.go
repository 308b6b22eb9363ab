package zone

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// This file keeps a version's load warnings right across Apply: the
// warnings about a name's records are those of its records now, and the
// NSEC or NSEC3 chain's warning (the first gap, as the builder reports
// it) is that of the chain now. A version made in place starts from the
// warnings of the version it is made from, drops those of the names the
// change set touched and checks those names again; the chain is checked
// around what changed, or whole when it was broken before (the gap
// reported may be mended, and the builder reports only the first).

// warnInfo says what one of a zone's warnings is about (parallel to
// Zone.warnings).
type warnInfo struct {
	// owner is the lowercase wire name of the node whose records the
	// warning is about; nil for a warning about the zone as a whole.
	owner []byte
	// chain marks the NSEC or NSEC3 chain's warning.
	chain bool
}

// The builder's warning about a gap in an NSEC or NSEC3 chain starts and
// ends so (see buildNSEC and buildNSEC3).
const (
	nsecBroken  = "NSEC chain broken: "
	nsec3Broken = "NSEC3 chain broken: "
	gapTail     = "; the first gap is reported, denials near it will not validate"
)

// warnInfoOf derives what a warning of a loaded version is about from its
// text (the builder's formats, see buildSets and buildNSEC3): the name
// whose records it names, the chain, or else the zone.
func (z *Zone) warnInfoOf(text string) warnInfo {
	_, m, ok := strings.Cut(text, "zone "+z.origin+": ")
	if !ok {
		return warnInfo{}
	}
	if strings.HasPrefix(m, nsecBroken) || strings.HasPrefix(m, nsec3Broken) {
		return warnInfo{chain: true}
	}
	var name string
	switch {
	case strings.HasPrefix(m, "TTL "):
		// TTL t of OWNER TYPE differs ...
		if f := strings.Fields(m); len(f) > 3 && f[2] == "of" {
			name = f[3]
		}
	case strings.HasPrefix(m, "RRSIG covering "):
		// RRSIG covering TYPE at OWNER, which has no TYPE RRset
		if f := strings.Fields(m); len(f) > 4 && f[3] == "at" {
			name = strings.TrimSuffix(f[4], ",")
		}
	case strings.HasPrefix(m, "NSEC3 owner "), strings.HasPrefix(m, "NSEC3 at "):
		// NSEC3 owner OWNER is not ..., NSEC3 at OWNER has other ...
		if f := strings.Fields(m); len(f) > 2 {
			name = f[2]
		}
	case strings.HasPrefix(m, "malformed NSEC3 record at "):
		if f := strings.Fields(m); len(f) > 4 {
			name = strings.TrimSuffix(f[4], ";")
		}
	}
	if name == "" {
		return warnInfo{}
	}
	w, err := toWire(name)
	if err != nil {
		return warnInfo{}
	}
	return warnInfo{owner: lowerWire(w)}
}

// warningText renders a warning found by Apply: it names the zone's file
// but no line, as the records it is about came from a change set.
func (z *Zone) warningText(msg string) string {
	return (&LoadError{Origin: z.origin, File: z.file, Msg: msg}).Error()
}

// nodeWarnings returns the builder's warnings about the records of one
// name (see buildSets): an RRset whose TTLs differ (the first record's is
// served, as rebuildNode serves it), RRSIGs that cover no RRset of the
// name.
func nodeWarnings(owner []byte, recs []Record) []string {
	var out []string
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].Type == recs[i].Type {
			j++
		}
		t := recs[i].Type
		if t != dns.TypeRRSIG {
			for _, r := range recs[i+1 : j] {
				if r.TTL != recs[i].TTL {
					out = append(out, fmt.Sprintf("TTL %d of %s %s differs from the RRset's TTL %d; %d is served", r.TTL, wireString(owner), typeName(t), recs[i].TTL, recs[i].TTL))
					break
				}
			}
		} else {
			// RRSIGs, ordered by their data, whose first two bytes
			// are the type covered.
			for k := i; k < j; {
				cov := covers(&recs[k])
				m := k
				for m < j && covers(&recs[m]) == cov {
					m++
				}
				if cov == dns.TypeRRSIG || countType(recs, cov) == 0 {
					out = append(out, fmt.Sprintf("RRSIG covering %s at %s, which has no %s RRset", typeName(cov), wireString(owner), typeName(cov)))
				}
				k = m
			}
		}
		i = j
	}
	return out
}

func covers(r *Record) uint16 {
	if len(r.Data) < 2 {
		return 0
	}
	return uint16(r.Data[0])<<8 | uint16(r.Data[1])
}

// updateWarnings makes the warnings of nz, made in place from z by the
// changes chg: z's warnings but those about the names chg touches and the
// chain's, the touched names' warnings as their records give them now,
// and the chain's gap, if it has one.
func (z *Zone) updateWarnings(nz *Zone, p *partial, chg []*nodeChange) {
	info := z.upd.warns
	if len(info) != len(z.warnings) {
		// A loaded version: what its warnings are about is read from
		// their text.
		info = make([]warnInfo, len(z.warnings))
		for i, w := range z.warnings {
			info[i] = z.warnInfoOf(w)
		}
	}
	gone := map[string]bool{}
	for _, c := range chg {
		gone[string(c.owner)] = true
	}
	var texts []string
	var infos []warnInfo
	wasBroken := false
	for i, w := range z.warnings {
		switch {
		case info[i].chain:
			wasBroken = true
		case info[i].owner != nil && gone[string(info[i].owner)]:
		default:
			texts, infos = append(texts, w), append(infos, info[i])
		}
	}
	sorted := slices.Clone(chg)
	slices.SortFunc(sorted, func(a, b *nodeChange) int { return CompareCanonical(a.owner, b.owner) })
	for _, c := range sorted {
		if c.node == None {
			continue
		}
		for _, m := range nodeWarnings(c.owner, c.recs) {
			texts, infos = append(texts, nz.warningText(m)), append(infos, warnInfo{owner: c.owner})
		}
	}
	if d := nz.denial; d != nil {
		var gap string
		switch d.mode {
		case DenialNSEC3:
			gap = nz.nsec3Gap(wasBroken, p.chainHashes, p.nsec3Nodes)
		case DenialNSEC:
			// From where nsecAt was set again and from every name
			// changed: a name may gain data without an NSEC.
			starts := slices.Clone(p.nsecStarts)
			for _, c := range chg {
				if c.node != None {
					starts = append(starts, c.node)
				}
			}
			gap = nz.nsecGap(wasBroken, starts)
		}
		if gap != "" {
			texts, infos = append(texts, nz.warningText(gap)), append(infos, warnInfo{chain: true})
		}
	}
	nz.warnings, nz.upd.warns = texts, infos
}

// nsec3Data returns the data of the NSEC3 record of rank i, read
// from its proof block, where it comes first.
func (z *Zone) nsec3Data(i int) []byte {
	d := z.denial
	return d.proofData(d.blockAt(i))
}

// nsec3Owner returns the owner name of the NSEC3 record of rank i.
func (z *Zone) nsec3Owner(i int) []byte {
	d := z.denial
	label := strings.ToLower(nsec3Base32.EncodeToString(d.hashAt(i)))
	return append(append([]byte{byte(len(label))}, label...), z.apex...)
}

// dataOf returns the data of the first record of type t of node n, nil
// when it has none; it is valid until the iterator's next use.
func (it *walkIter) dataOf(n int, t uint16) []byte {
	it.node, it.ents, it.ent = n, it.ents[:0], 0
	it.kept = it.keptFor(n)
	if it.load() != nil {
		return nil
	}
	for it.ent < len(it.ents) {
		r, _ := it.next()
		if r.Type == t {
			return r.Data
		}
	}
	return nil
}

// nsec3Next returns the next hashed owner of NSEC3 data rd, and whether
// the opt-out flag is set.
func nsec3Next(rd []byte) ([]byte, bool) {
	if len(rd) < 5 || 6+int(rd[4]) > len(rd) {
		return nil, false
	}
	sl := int(rd[4])
	hl := int(rd[5+sl])
	if 6+sl+hl > len(rd) {
		return nil, false
	}
	return rd[6+sl : 6+sl+hl], rd[1]&1 != 0
}

// nsec3Gap returns the builder's warning about the first gap of an NSEC3
// chain ("" for none): the first entry, in hash order, whose next hash is
// not the next entry's, else the first node, in node order, that should
// have an NSEC3 record and has none. When the chain was not broken before
// the change, only the entries around the hashes changed (inserted,
// replaced or removed) and the nodes whose match was computed again are
// looked at: the others are as they were.
func (z *Zone) nsec3Gap(whole bool, changed [][]byte, touched []uint32) string {
	d := z.denial
	n := d.chainLen()
	var at []int
	if whole {
		for i := range n {
			at = append(at, i)
		}
	} else {
		// The entry of each hash changed, and the one before it, whose
		// next hash an insertion or a removal changes.
		for _, h := range changed {
			c := d.cover(h)
			at = append(at, c, (c+n-1)%n)
		}
		slices.Sort(at)
		at = slices.Compact(at)
	}
	for _, i := range at {
		next, _ := nsec3Next(z.nsec3Data(i))
		j := (i + 1) % n
		want := d.hashAt(j)
		if next != nil && !bytes.Equal(next, want) {
			return nsec3Broken + fmt.Sprintf("the NSEC3 at %s points to %s, but the next hash in the zone is %s", wireString(z.nsec3Owner(i)),
				strings.ToLower(nsec3Base32.EncodeToString(next)), strings.ToLower(nsec3Base32.EncodeToString(want))) + gapTail
		}
	}
	nodes := touched
	if whole {
		nodes = make([]uint32, len(z.nodes))
		for q := range nodes {
			nodes[q] = uint32(q)
		}
	}
	var h [nsec3HashLen]byte
	for _, q := range nodes {
		nd := &z.nodes[q]
		if d.match[q] != None || nd.Flags&(FlagOccluded|FlagNSEC3Owner|FlagEmpty) != 0 {
			continue
		}
		w := z.NodeName(nd)
		if nd.Flags&FlagDelegation != 0 {
			nsec3Hash(&h, w, d.salt, int(d.iterations))
			if _, optOut := nsec3Next(z.nsec3Data(d.cover(h[:]))); optOut {
				continue
			}
		}
		return nsec3Broken + fmt.Sprintf("%s has no NSEC3 record", wireString(w)) + gapTail
	}
	return ""
}

// nsecGap returns the builder's warning about the first gap of an NSEC
// chain ("" for none), walking the nodes in order as buildNSEC does. When
// the chain was not broken before the change, only the stretches of the
// chain around the nodes at starts (the new version's nodes prepared
// anew, added, or next to one removed) are walked: from the node with an
// NSEC at or before each to the next with one after it.
func (z *Zone) nsecGap(whole bool, starts []uint32) string {
	it := newWalkIter(z)
	hasNSEC := func(q int) bool { return z.SetOf(&z.nodes[q], dns.TypeNSEC) != None }
	var pendNext []byte
	pendOwner := -1
	// step checks node q; it returns the gap found, if any.
	step := func(q int) string {
		w := z.NodeName(&z.nodes[q])
		if hasNSEC(q) {
			var next []byte
			if rd := it.dataOf(q, dns.TypeNSEC); rd != nil {
				next = lowerWire(rd[:nameLen(rd)])
			}
			if pendOwner >= 0 && !bytes.Equal(pendNext, w) {
				return nsecBroken + fmt.Sprintf("the NSEC at %s points to %s, but the next name with an NSEC is %s",
					wireString(z.NodeName(&z.nodes[pendOwner])), wireString(pendNext), wireString(w)) + gapTail
			}
			pendNext, pendOwner = next, q
		} else if z.nodes[q].Flags&(FlagEmpty|FlagOccluded|FlagNSEC3Owner) == 0 {
			return nsecBroken + fmt.Sprintf("%s has data but no NSEC record", wireString(w)) + gapTail
		}
		return ""
	}
	end := func() string {
		if pendOwner >= 0 && !bytes.Equal(pendNext, z.apex) {
			return nsecBroken + fmt.Sprintf("the last NSEC, at %s, points to %s instead of the apex",
				wireString(z.NodeName(&z.nodes[pendOwner])), wireString(pendNext)) + gapTail
		}
		return ""
	}
	if whole {
		for q := range z.nodes {
			if g := step(q); g != "" {
				return g
			}
		}
		return end()
	}
	starts = slices.Clone(starts)
	slices.Sort(starts)
	done := -1
	for _, s := range starts {
		if int(s) <= done {
			continue
		}
		// From the node with an NSEC before s, so that the link into
		// s is checked too.
		q := min(int(s), len(z.nodes)) - 1
		for q > 0 && !hasNSEC(q) {
			q--
		}
		q = max(q, 0)
		pendOwner, pendNext = -1, nil
		for ; q < len(z.nodes); q++ {
			if g := step(q); g != "" {
				return g
			}
			done = q
			if q > int(s) && hasNSEC(q) {
				break
			}
		}
		if q >= len(z.nodes) {
			if g := end(); g != "" {
				return g
			}
		}
	}
	return ""
}
