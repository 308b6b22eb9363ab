package zone

import (
	"bytes"
	"fmt"
)

// Set is an immutable group of zones with longest-suffix selection of the
// zone for a query name. It may hold thousands of zones.
type Set struct {
	zones []*Zone
	index []slot // apex hash -> zone index + 1
	mask  uint32
	// depths has bit d set when some zone's apex has d labels, so a lookup
	// probes only the suffixes of a query name that could be an apex.
	depths [2]uint64
}

// NewSet groups zones. Two zones with the same origin are an error.
func NewSet(zones []*Zone) (*Set, error) {
	s := &Set{zones: zones}
	size := 2
	for size < len(zones)*2 {
		size <<= 1
	}
	s.index = make([]slot, size)
	s.mask = uint32(size - 1)
	for i, z := range zones {
		if j := s.Find(z.apex, hashName(z.apex)); j >= 0 {
			return nil, fmt.Errorf("zone %s is configured twice", z.origin)
		}
		h := hashName(z.apex)
		k := slotOf(h, s.mask)
		for s.index[k].node != 0 {
			k = (k + 1) & s.mask
		}
		s.index[k] = slot{hash: h, node: uint32(i) + 1}
		s.depths[z.apexLabels>>6] |= 1 << (z.apexLabels & 63)
	}
	return s, nil
}

// Zones returns the set's zones; index i is the Zone index in results.
func (s *Set) Zones() []*Zone { return s.zones }

// Zone returns zone i.
func (s *Set) Zone(i int) *Zone { return s.zones[i] }

// HasDepth reports whether some zone's apex has exactly labels labels.
func (s *Set) HasDepth(labels int) bool {
	return s.depths[labels>>6]&(1<<(labels&63)) != 0
}

// Find returns the index of the zone whose apex is name (lowercase wire
// format, hash h), or -1. It allocates nothing.
func (s *Set) Find(name []byte, h uint32) int {
	k := slotOf(h, s.mask)
	for {
		sl := s.index[k]
		if sl.node == 0 {
			return -1
		}
		if sl.hash == h && bytes.Equal(s.zones[sl.node-1].apex, name) {
			return int(sl.node - 1)
		}
		k = (k + 1) & s.mask
	}
}

// Lookup returns the zone with the given origin (presentation format), or nil.
func (s *Set) Lookup(origin string) *Zone {
	w, err := toWire(origin)
	if err != nil {
		return nil
	}
	w = lowerWire(w)
	if i := s.Find(w, hashName(w)); i >= 0 {
		return s.zones[i]
	}
	return nil
}
