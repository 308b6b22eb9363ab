package zone

import "bytes"

// Diff calls fn for each record of old not in new (del=true, all of them
// first) and then for each record of new not in old (del=false), each in
// canonical order: the difference an IXFR sends (RFC 1995 section 4),
// the SOA records among it. Records are compared as Walk yields them, in
// canonical form, TTL included: a record whose TTL changed is deleted and
// added. It stops at and returns fn's first error.
//
// The two zones' walks are merged twice, once for the deletions and once
// for the additions, so that Diff holds one node's records of each zone at
// a time and never the whole of either.
func Diff(old, new *Zone, fn func(del bool, r *Record) error) error {
	if err := diffPass(old, new, func(r *Record) error { return fn(true, r) }); err != nil {
		return err
	}
	return diffPass(new, old, func(r *Record) error { return fn(false, r) })
}

// diffPass calls fn for each record of a that b does not hold.
func diffPass(a, b *Zone, fn func(r *Record) error) error {
	ia, ib := newWalkIter(a), newWalkIter(b)
	ra, err := ia.next()
	if err != nil {
		return err
	}
	rb, err := ib.next()
	if err != nil {
		return err
	}
	for ra != nil {
		c := -1
		if rb != nil {
			c = compareRecords(ra, rb)
		}
		switch {
		case c < 0:
			if err := fn(ra); err != nil {
				return err
			}
			ra, err = ia.next()
		case c > 0:
			rb, err = ib.next()
		default:
			if ra.TTL != rb.TTL {
				if err := fn(ra); err != nil {
					return err
				}
			}
			if ra, err = ia.next(); err == nil {
				rb, err = ib.next()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// compareRecords orders two records as Walk yields them: owner in
// canonical order, then type, then RDATA.
func compareRecords(a, b *Record) int {
	if !bytes.Equal(a.Owner, b.Owner) {
		return CompareCanonical(a.Owner, b.Owner)
	}
	if a.Type != b.Type {
		return int(a.Type) - int(b.Type)
	}
	return bytes.Compare(a.Data, b.Data)
}
