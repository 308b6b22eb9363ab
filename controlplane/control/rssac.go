package control

// CmdRSSAC002 asks for the RSSAC002 version 3 documents of one 24-hour
// UTC period: Request.Zones[0] is its date, YYYY-MM-DD, or absent for
// the day so far. Its result is an RSSACReport.
const CmdRSSAC002 = "rssac002"

// RSSACReport is one day's RSSAC002 documents.
type RSSACReport struct {
	// Date is the day reported, YYYY-MM-DD (UTC).
	Date string `json:"date"`
	// YAML holds the documents, each starting with "---": traffic-volume,
	// traffic-sizes, rcode-volume, unique-sources and load-time.
	YAML string `json:"yaml"`
	// Partial is set when the counts do not cover the whole day: the day
	// is still going on, or ringdns started after it began (Since).
	Partial bool   `json:"partial,omitempty"`
	Since   string `json:"since,omitempty"`
}
