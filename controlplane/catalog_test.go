package controlplane

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// zoneText is a small valid zone with the given origin and serial.
func zoneText(origin string, serial int) string {
	return fmt.Sprintf(`$ORIGIN %s
$TTL 300
@    IN SOA ns1 hostmaster %d 7200 3600 1209600 300
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.80
`, origin, serial)
}

// brokenZone has a syntax error on line 4.
const brokenZone = `$TTL 300
@    IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@    IN NS  ns1
ns1  IN A   not-an-address
`

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newTestCatalog writes zones given as origin, text pairs and configures
// them in that order.
func newTestCatalog(t *testing.T, zones ...string) (*Catalog, string) {
	t.Helper()
	dir := t.TempDir()
	c := &Config{}
	for i := 0; i+1 < len(zones); i += 2 {
		p := filepath.Join(dir, strings.TrimSuffix(zones[i], ".")+".zone")
		writeFile(t, p, zones[i+1])
		c.AddZone(zones[i], p)
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	return NewCatalog(c, quietLog()), dir
}

func servedSerial(t *testing.T, cat *Catalog, origin string) uint32 {
	t.Helper()
	for _, z := range cat.Current.Load().Zones().Zones() {
		if z.Origin() == origin {
			return z.Serial()
		}
	}
	t.Fatalf("zone %s not in the published snapshot", origin)
	return 0
}

func TestCatalogReload(t *testing.T) {
	cat, dir := newTestCatalog(t, "a.test.", zoneText("a.test.", 1), "b.test.", zoneText("b.test.", 10))
	if _, err := cat.Load(); err != nil {
		t.Fatal(err)
	}
	first := cat.Current.Load()
	if servedSerial(t, cat, "a.test.") != 1 || servedSerial(t, cat, "b.test.") != 10 {
		t.Fatal("wrong serials after load")
	}

	// Nothing changed: nothing is rebuilt and the snapshot stays.
	res, err := cat.Reload(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range res.Zones {
		if z.Status != control.StatusUnchanged {
			t.Errorf("zone %s: %s, want unchanged", z.Origin, z.Status)
		}
	}
	if cat.Current.Load() != first {
		t.Error("an unchanged reload published a new snapshot")
	}

	// A broken file keeps the previous version serving and names its line.
	aPath := filepath.Join(dir, "a.test.zone")
	writeFile(t, aPath, brokenZone)
	res, err = cat.Reload([]string{"A.TEST"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || len(res.Zones) != 1 || res.Zones[0].Status != control.StatusFailed || !res.Zones[0].Serving {
		t.Fatalf("broken reload = %+v", res)
	}
	if want := aPath + ":4"; !strings.Contains(res.Zones[0].Error, want) || res.Zones[0].Line != 4 {
		t.Errorf("error %q (line %d) does not name %s", res.Zones[0].Error, res.Zones[0].Line, want)
	}
	if servedSerial(t, cat, "a.test.") != 1 {
		t.Error("the failed zone's previous version is not served")
	}
	zs := cat.Zones()
	if zs[0].LastError == "" || !zs[0].Serving || zs[0].Failures != 1 {
		t.Errorf("zones after failure = %+v", zs[0])
	}

	// A fixed file with a new serial is loaded; the other zone is reused.
	writeFile(t, aPath, zoneText("a.test.", 2))
	res, err = cat.Reload(nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.Zones[0].Status != control.StatusLoaded || res.Zones[1].Status != control.StatusUnchanged {
		t.Errorf("fixed reload = %+v", res)
	}
	if servedSerial(t, cat, "a.test.") != 2 || servedSerial(t, cat, "b.test.") != 10 {
		t.Error("wrong serials after the fixed reload")
	}
	if cat.Current.Load() == first {
		t.Error("a changed zone did not publish a new snapshot")
	}

	// Same content, new mtime: the hash matches, so nothing is rebuilt.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(aPath, later, later); err != nil {
		t.Fatal(err)
	}
	snap := cat.Current.Load()
	if res, _ = cat.Reload([]string{"a.test."}); res.Zones[0].Status != control.StatusUnchanged {
		t.Errorf("touched file: %s, want unchanged", res.Zones[0].Status)
	}
	if cat.Current.Load() != snap || servedSerial(t, cat, "a.test.") != 2 {
		t.Error("a touched file changed the snapshot")
	}

	if _, err := cat.Reload([]string{"nope.test."}); !errors.Is(err, ErrUnknownZone) {
		t.Errorf("reload of an unknown zone: %v, want ErrUnknownZone", err)
	}
	reloads, failures, _, _ := cat.ReloadCounts()
	if reloads != 5 || failures != 1 {
		t.Errorf("reload counts = %d, %d; want 5, 1", reloads, failures)
	}
}

func TestCatalogStartupSkipsBrokenZones(t *testing.T) {
	cat, _ := newTestCatalog(t, "a.test.", zoneText("a.test.", 1), "b.test.", brokenZone)
	res, err := cat.Load()
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || len(cat.Current.Load().Zones().Zones()) != 1 {
		t.Errorf("load = %+v", res)
	}

	cat, _ = newTestCatalog(t, "b.test.", brokenZone)
	if _, err := cat.Load(); !errors.Is(err, ErrNoZones) {
		t.Errorf("all zones broken: %v, want ErrNoZones", err)
	}
	if cat.Current.Load() != nil {
		t.Error("a snapshot was published with no zone")
	}
}

func TestCatalogMissingFile(t *testing.T) {
	c := &Config{}
	c.AddZone("a.test.", filepath.Join(t.TempDir(), "missing.zone"))
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	res, err := CheckZones(c, quietLog())
	if err == nil || res[0].Status != control.StatusFailed || !strings.Contains(res[0].Error, "missing.zone") {
		t.Errorf("CheckZones = %+v, %v", res, err)
	}
}

// TestCatalogReloadDuplicateNames checks that a zone named more than once
// in one reload, in any of the spellings zone names compare equal under, is
// read and built once, and that a request naming more zones than the bound
// is refused before any work.
func TestCatalogReloadDuplicateNames(t *testing.T) {
	cat, dir := newTestCatalog(t, "a.test.", zoneText("a.test.", 1), "b.test.", zoneText("b.test.", 10))
	if _, err := cat.Load(); err != nil {
		t.Fatal(err)
	}
	// A broken file makes every attempt count: each build of it fails and
	// adds one to the zone's failures.
	writeFile(t, filepath.Join(dir, "a.test.zone"), brokenZone)
	for _, tc := range []struct {
		name  string
		names []string
		want  []string // the zones reloaded, in order
	}{
		{"same spelling", []string{"a.test.", "a.test."}, []string{"a.test."}},
		{"case and trailing dot", []string{"a.test", "A.TEST.", "b.test", "a.Test", "B.TEST."}, []string{"a.test.", "b.test."}},
		{"as many as allowed", manyNames("A.test", MaxReloadZones), []string{"a.test."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := zoneFailures(t, cat, "a.test.")
			res, err := cat.Reload(tc.names)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, z := range res.Zones {
				got = append(got, z.Origin)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("reloaded %d zones (%.40s...), want %v", len(got), strings.Join(got, " "), tc.want)
			}
			if n := zoneFailures(t, cat, "a.test.") - before; n != 1 {
				t.Errorf("a.test. was built %d times, want once", n)
			}
			if res.Failed != 1 {
				t.Errorf("failed = %d, want 1", res.Failed)
			}
		})
	}

	before := zoneFailures(t, cat, "a.test.")
	_, err := cat.Reload(manyNames("a.test.", MaxReloadZones+1))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("at most %d", MaxReloadZones)) {
		t.Errorf("reload naming %d zones: %v, want a refusal", MaxReloadZones+1, err)
	}
	if zoneFailures(t, cat, "a.test.") != before {
		t.Error("a refused reload built a zone")
	}
}

func manyNames(name string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = name
	}
	return names
}

func zoneFailures(t *testing.T, cat *Catalog, origin string) uint64 {
	t.Helper()
	for _, z := range cat.Zones() {
		if z.Origin == origin {
			return z.Failures
		}
	}
	t.Fatalf("zone %s not configured", origin)
	return 0
}
