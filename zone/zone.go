package zone

// Zone is one loaded, validated, immutable zone.
type Zone struct {
	origin   string
	file     string
	serial   uint32
	records  int
	warnings []string
}

// Origin is the zone's apex in presentation format, with a final dot.
func (z *Zone) Origin() string { return z.origin }

// File is the master file the zone was loaded from ("" when parsed from memory).
func (z *Zone) File() string { return z.file }

// Serial is the SOA serial.
func (z *Zone) Serial() uint32 { return z.serial }

// Records is the number of resource records loaded.
func (z *Zone) Records() int { return z.records }

// Warnings are problems that did not stop the zone from loading.
func (z *Zone) Warnings() []string { return z.warnings }
