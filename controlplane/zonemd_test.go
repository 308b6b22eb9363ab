package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/zone"
)

// withZONEMD returns the zone text with a ZONEMD record (SIMPLE, SHA-384)
// holding its digest at the apex.
func withZONEMD(t *testing.T, origin, text string) string {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(text), origin, "digest")
	if err != nil {
		t.Fatal(err)
	}
	d, err := z.ZONEMDDigest(zone.ZONEMDSHA384)
	if err != nil {
		t.Fatal(err)
	}
	return text + fmt.Sprintf("@ 300 IN ZONEMD %d 1 1 %x\n", z.Serial(), d)
}

// zonemdCatalog configures one zone, z.test., from text with the given
// zonemd setting.
func zonemdCatalog(t *testing.T, mode, text string) (*Catalog, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "z.zone")
	writeFile(t, p, text)
	c := &Config{}
	c.AddZone("z.test.", p)
	c.Zones[0].ZONEMD = mode
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	return NewCatalog(c, quietLog()), p
}

// tamper changes the address of ns1 (in zoneText's zone and the secondary
// tests' versions), which the zone's ZONEMD then no longer matches.
func tamper(text string) string {
	if !strings.Contains(text, "192.0.2.53") {
		panic("tamper: nothing to change")
	}
	return strings.Replace(text, "192.0.2.53", "192.0.2.54", 1)
}

// TestCatalogZONEMD: with zonemd = "verify" a version whose ZONEMD fails
// is not published and the served version stays, the reload saying why;
// "require" refuses a zone without ZONEMD; "ignore" serves what it is
// given. The state shows in the load results and zone status.
func TestCatalogZONEMD(t *testing.T) {
	t.Run("verify", func(t *testing.T) {
		cat, p := zonemdCatalog(t, "", withZONEMD(t, "z.test.", zoneText("z.test.", 1)))
		res, err := cat.Load()
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Zones[0].ZONEMD; got != "verified sha384" {
			t.Errorf("load result ZONEMD %q", got)
		}
		writeFile(t, p, tamper(withZONEMD(t, "z.test.", zoneText("z.test.", 2))))
		res, err = cat.Reload(nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Failed != 1 || !strings.Contains(res.Zones[0].Error, "ZONEMD verification failed") {
			t.Errorf("reload of a version failing ZONEMD: %d failed, error %q", res.Failed, res.Zones[0].Error)
		}
		if s := servedSerial(t, cat, "z.test."); s != 1 {
			t.Errorf("serial %d served after a version failing ZONEMD, want 1 kept", s)
		}
		st := cat.Zones()[0]
		if !strings.Contains(st.LastError, "ZONEMD") || st.ZONEMD != "verified sha384" {
			t.Errorf("zone status: last error %q, ZONEMD %q", st.LastError, st.ZONEMD)
		}
		writeFile(t, p, zoneText("z.test.", 3))
		if res, err = cat.Reload(nil); err != nil || res.Failed != 0 {
			t.Fatalf("reload of a version without ZONEMD: %v %+v", err, res)
		}
		if s := servedSerial(t, cat, "z.test."); s != 3 || cat.Zones()[0].ZONEMD != "absent" {
			t.Errorf("serial %d, ZONEMD %q; want 3, absent", s, cat.Zones()[0].ZONEMD)
		}
	})
	t.Run("require", func(t *testing.T) {
		cat, p := zonemdCatalog(t, "require", zoneText("z.test.", 1))
		res, err := cat.Load()
		if err != ErrNoZones || res.Failed != 1 || !strings.Contains(res.Zones[0].Error, `zonemd = "require"`) {
			t.Fatalf("load of a zone without ZONEMD under require: %v, %+v", err, res.Zones)
		}
		writeFile(t, p, withZONEMD(t, "z.test.", zoneText("z.test.", 2)))
		if res, err = cat.Reload(nil); err != nil || res.Failed != 0 {
			t.Fatalf("reload with ZONEMD under require: %v %+v", err, res.Zones)
		}
		if s := servedSerial(t, cat, "z.test."); s != 2 {
			t.Errorf("serial %d served, want 2", s)
		}
		// A ZONEMD of a hash algorithm not supported is no usable one.
		writeFile(t, p, zoneText("z.test.", 3)+"@ 300 IN ZONEMD 3 1 240 "+strings.Repeat("ab", 48)+"\n")
		if res, _ = cat.Reload(nil); res.Failed != 1 || servedSerial(t, cat, "z.test.") != 2 {
			t.Errorf("an unsupported ZONEMD under require: %+v", res.Zones)
		}
	})
	t.Run("ignore", func(t *testing.T) {
		cat, _ := zonemdCatalog(t, "ignore", tamper(withZONEMD(t, "z.test.", zoneText("z.test.", 1))))
		res, err := cat.Load()
		if err != nil || res.Zones[0].Status != control.StatusLoaded || res.Zones[0].ZONEMD != "ignored" {
			t.Fatalf("load under ignore: %v %+v", err, res.Zones)
		}
	})
	t.Run("check", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "z.zone")
		writeFile(t, p, tamper(withZONEMD(t, "z.test.", zoneText("z.test.", 1))))
		c := &Config{}
		c.AddZone("z.test.", p)
		if err := c.Normalize(); err != nil {
			t.Fatal(err)
		}
		out, err := CheckZones(c, quietLog())
		if err == nil || out[0].Status != control.StatusFailed || !strings.Contains(out[0].Error, "ZONEMD verification failed") {
			t.Errorf("CheckZones of a zone failing ZONEMD: %v, %+v", err, out)
		}
	})
}

// TestSecondaryZONEMD: a zone transferred in whose ZONEMD fails is not
// published, by IXFR or AXFR, nor written over the copy on disk; the
// version before keeps serving, and the transfer's error says why.
func TestSecondaryZONEMD(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "")
	p.setZone(t, withZONEMD(t, "sec.example.", secV1))
	file := filepath.Join(t.TempDir(), "sec.zone")
	c := secondaryCatalog(t, p, file, nil)
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	e := secondaryEntry(c)
	ctx := context.Background()
	c.refreshZone(ctx, e, refreshSOA)
	if st := transferState(t, c); st.Serial != 1 || st.ZONEMD != "verified sha384" {
		t.Fatalf("after AXFR: serial %d, ZONEMD %q, error %q", st.Serial, st.ZONEMD, st.LastError)
	}
	for _, kind := range []string{"IXFR", "AXFR"} {
		p.mu.Lock()
		p.noIXFR = kind == "AXFR"
		p.mu.Unlock()
		p.setZone(t, tamper(withZONEMD(t, "sec.example.", secV2)))
		c.refreshZone(ctx, e, refreshSOA)
		st := transferState(t, c)
		if st.Serial != 1 || !strings.Contains(st.LastError, "ZONEMD verification failed") {
			t.Errorf("%s of a version failing ZONEMD: serial %d, error %q; want serial 1 kept and a ZONEMD error", kind, st.Serial, st.LastError)
		}
		if got := answerA(t, c, "www.sec.example."); got != "192.0.2.80" {
			t.Errorf("after the %s refused: www is %s, want version 1's 192.0.2.80", kind, got)
		}
		if copy, err := os.ReadFile(file); err != nil || !strings.Contains(string(copy), "192.0.2.80") {
			t.Errorf("after the %s refused, the copy on disk is not version 1's (%v)", kind, err)
		}
	}
	p.setZone(t, withZONEMD(t, "sec.example.", strings.Replace(secV2, "hostmaster 2", "hostmaster 3", 1)))
	c.refreshZone(ctx, e, refreshSOA)
	if st := transferState(t, c); st.Serial != 3 || st.ZONEMD != "verified sha384" {
		t.Errorf("after a good version: serial %d, ZONEMD %q, error %q", st.Serial, st.ZONEMD, st.LastError)
	}
}
