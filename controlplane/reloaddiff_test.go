package controlplane

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/zone"
)

// TestReloadApplied: a reload of a file with a small change applies the
// difference to the version served (zone.ReloadFile), answers exactly as a
// fresh load of the file, and hands the journal the difference; a bad
// file keeps the version served with an error naming the line; a file of
// the same records is unchanged; a large change is built from the file.
func TestReloadApplied(t *testing.T) {
	const origin = "tld.example."
	v1 := secTLD(1, nil)
	cat, dir := newTestCatalog(t, origin, v1)
	path := filepath.Join(dir, "tld.example.zone")
	var known []*changeset
	cat.onKnown = func(_ string, from, to *zone.Zone, sets []*changeset) { known = sets }
	if _, err := cat.Load(); err != nil {
		t.Fatal(err)
	}

	v2 := secTLD(2, func(s string) string {
		s = strings.Replace(s, "ns1.d3 IN A 10.0.0.3", "ns1.d3 IN A 10.9.9.3", 1)
		return strings.Replace(s, "ns1.d5 IN A 10.0.0.5", "ns1.d5 60 IN A 10.0.0.5", 1)
	})
	writeFile(t, path, v2)
	res, err := cat.Reload(nil)
	if err != nil {
		t.Fatal(err)
	}
	if zr := res.Zones[0]; zr.Status != control.StatusLoaded || zr.Applied != "incremental" || zr.Serial != 2 {
		t.Fatalf("reload of a small change: %+v", zr)
	}
	if got := cat.entries[0].cur.Applied(); got != "incremental" {
		t.Errorf("the version served was made %q", got)
	}
	sameAnswers(t, cat, loadedCatalog(t, origin, v2), origin, v2)
	// The SOAs apart: the old address deleted, the new one and the new
	// TTL added.
	if len(known) != 1 || known[0].from != 1 || known[0].to != 2 || known[0].records != 3 {
		t.Errorf("the journal was handed %+v, want the difference 1-2 of 3 records", known)
	}

	// A file that breaks a zone rule: the version served stays, and the
	// error names the file and the line.
	bad := strings.Replace(v2, " 2 3600 600", " 3 3600 600", 1) + "ns1.d4 IN CNAME elsewhere.example.\n"
	writeFile(t, path, bad)
	snap := cat.Current.Load()
	res, _ = cat.Reload(nil)
	zr := res.Zones[0]
	if zr.Status != control.StatusFailed || !zr.Serving || zr.Serial != 2 || zr.Line == 0 || !strings.Contains(zr.Error, path) {
		t.Errorf("reload of a bad file: %+v", zr)
	}
	if cat.Current.Load() != snap || servedSerial(t, cat, origin) != 2 {
		t.Error("a bad file changed what is served")
	}

	// The same records in another text: unchanged, nothing published.
	writeFile(t, path, "; the same zone\n"+strings.ReplaceAll(v2, "IN DS", "DS"))
	res, _ = cat.Reload(nil)
	if zr := res.Zones[0]; zr.Status != control.StatusUnchanged {
		t.Errorf("reload of the same records: %+v", zr)
	}
	if cat.Current.Load() != snap {
		t.Error("the same records published a new snapshot")
	}

	// Over a tenth of the records: built from the file.
	v3 := secTLD(3, func(s string) string { return strings.ReplaceAll(s, "IN A 10.0.0.", "IN A 10.0.1.") })
	writeFile(t, path, v3)
	res, _ = cat.Reload(nil)
	if zr := res.Zones[0]; zr.Status != control.StatusLoaded || !strings.HasPrefix(zr.Applied, "built: ") || zr.Serial != 3 {
		t.Errorf("reload of a large change: %+v", zr)
	}
	sameAnswers(t, cat, loadedCatalog(t, origin, v3), origin, v3)
}

// TestJournalKnown: the differences the catalog knows are journaled as
// they are, not computed again from the versions' walks; differences that
// do not lead from the version journaled last are not taken.
func TestJournalKnown(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	vs := journalVersions(t, 3)
	j := newTestJournals(t, cfg)
	publishAll(t, j, vs[0])
	soa := func(z *zone.Zone) dns.RR {
		rr, err := dns.NewRR(fmt.Sprintf("example. 300 IN SOA ns1.example. hostmaster.example. %d 3600 600 86400 300", z.Serial()))
		if err != nil {
			t.Fatal(err)
		}
		return rr
	}
	marker, _ := dns.NewRR("marker.example. 300 IN TXT \"known\"")
	cs, err := newChangeset([]byte("\x07example\x00"), []dns.RR{soa(vs[0])}, []dns.RR{soa(vs[1]), marker})
	if err != nil {
		t.Fatal(err)
	}
	j.Known("example.", vs[0], vs[1], []*changeset{cs})
	publishAll(t, j, vs[1])
	if got := j.Chain("example.", 1, 2); len(got) != 1 || got[0] != cs {
		t.Errorf("the journal holds %v, want the known difference", got)
	}
	// Known from a version other than the one journaled last: computed.
	j.Known("example.", vs[0], vs[2], []*changeset{cs})
	publishAll(t, j, vs[2])
	if got := j.Chain("example.", 2, 3); len(got) != 1 || got[0] == cs || got[0].from != 2 {
		t.Errorf("the journal holds %v, want a computed difference 2-3", got)
	}
}
