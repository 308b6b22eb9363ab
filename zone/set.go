package zone

// Set is an immutable group of zones with longest-suffix selection of the
// zone for a query name.
type Set struct {
	zones []*Zone
}

// Zones returns the set's zones; index i is the Zone index in results.
func (s *Set) Zones() []*Zone { return s.zones }
