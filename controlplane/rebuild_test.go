package controlplane

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringdns/ringdns/zone"
)

// TestRebuildSuperseded reloads a zone file changed a little at a time,
// each change applied in place, and checks the rebuild policy: once what
// the updates superseded passes server.rebuild-superseded percent of the
// zone's memory, the catalog builds the version's records again in the
// background and publishes that table in its place (nothing superseded,
// the same serial, the same answers as a load of the file), and the
// journal takes it for the version it replaced: the chain of differences
// goes on unbroken, where a version of the same serial with other content
// would have reset it. With the policy off (100), the superseded data
// only grows.
func TestRebuildSuperseded(t *testing.T) {
	const origin = "tld.example."
	for _, share := range []int{5, 100} {
		t.Run(fmt.Sprint(share), func(t *testing.T) {
			text := func(serial int) string {
				return secTLD(serial, func(s string) string {
					for i := range serial {
						d := (i * 7) % 30
						s = strings.Replace(s, fmt.Sprintf("ns1.d%d IN A 10.0.0.%d\n", d, d), fmt.Sprintf("ns1.d%d IN A 10.1.%d.%d\n", d, i, d), 1)
					}
					return s
				})
			}
			cat, dir := newTestCatalog(t, origin, text(1))
			cat.rebuildShare = share
			cfg := &Config{Zones: []ZoneConfig{{Origin: origin, File: filepath.Join(dir, "tld.example.zone")}}}
			if err := cfg.Normalize(); err != nil {
				t.Fatal(err)
			}
			j := newTestJournals(t, cfg)
			cat.onPublish = func(origin string, _, z *zone.Zone) { j.Published(origin, z) }
			cat.onReplace = j.Replaced
			if _, err := cat.Load(); err != nil {
				t.Fatal(err)
			}
			e := cat.entries[0]
			rebuilt, most := 0, 0
			for serial := 2; serial <= 24; serial++ {
				writeFile(t, filepath.Join(dir, "tld.example.zone"), text(serial))
				res, err := cat.Reload(nil)
				if err != nil {
					t.Fatal(err)
				}
				if zr := res.Zones[0]; zr.Applied != "incremental" {
					t.Fatalf("serial %d: the reload was %q, not applied in place", serial, zr.Applied)
				}
				cat.RebuildIdle()
				cat.mu.Lock()
				z := e.cur
				cat.mu.Unlock()
				if z.Serial() != uint32(serial) || servedSerial(t, cat, origin) != uint32(serial) {
					t.Fatalf("serial %d: serving %d", serial, servedSerial(t, cat, origin))
				}
				sup := z.Superseded()
				most = max(most, 100*sup/z.MemoryBytes())
				if z.Applied() == "" {
					// Rebuilt: a table of its own.
					rebuilt++
					if sup != 0 {
						t.Errorf("serial %d: the rebuilt table has %d bytes superseded", serial, sup)
					}
				}
				sameAnswers(t, cat, loadedCatalog(t, origin, text(serial)), origin, text(serial))
				if !j.Idle(10 * time.Second) {
					t.Fatal("journal not done within 10 s")
				}
				if sets := j.Chain(origin, 1, uint32(serial)); len(sets) != serial-1 {
					t.Fatalf("serial %d: the journal chains %d differences from serial 1, want %d", serial, len(sets), serial-1)
				}
			}
			t.Logf("rebuilt %d times; superseded at most %d%% of the zone's memory", rebuilt, most)
			switch {
			case share < 100 && rebuilt == 0:
				t.Errorf("never rebuilt at %d%%", share)
			case share < 100 && most > 2*share+10:
				// A measure follows a sixty-fourth of the memory
				// appended, or 16 updates; one update of this zone
				// supersedes a few percent of it.
				t.Errorf("superseded up to %d%% of the zone's memory at a bound of %d%%", most, share)
			case share == 100 && rebuilt != 0:
				t.Errorf("rebuilt %d times with the policy off", rebuilt)
			case share == 100 && most < 10:
				t.Errorf("with the policy off, only %d%% superseded after 23 updates", most)
			}
		})
	}
}
