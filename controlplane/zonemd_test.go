package controlplane

import (
	"fmt"
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

// tamper changes one address of zoneText's zone, which its ZONEMD then no
// longer matches.
func tamper(text string) string { return strings.Replace(text, "192.0.2.80", "192.0.2.81", 1) }

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
