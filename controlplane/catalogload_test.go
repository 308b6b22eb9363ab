package controlplane

import (
	"testing"
)

// TestLoadFirstStamp requires a zone's first load from disk (loadFirst,
// which hashes the file while it loads it) to keep the stamp of the file
// it loaded, the one stampFile gives, so that a reload of the same file
// is known unchanged from the hash alone, without parsing it again. A
// missing file is an error, as before.
func TestLoadFirstStamp(t *testing.T) {
	cat, _ := newTestCatalog(t, "a.test.", zoneText("a.test.", 1))
	if _, err := cat.Load(); err != nil {
		t.Fatal(err)
	}
	e := cat.entries[0]
	want, _, err := cat.stampFile(e.file)
	if err != nil {
		t.Fatal(err)
	}
	if !e.stamp.valid || e.stamp.size != want.size || e.stamp.sum != want.sum {
		t.Errorf("first load's stamp %+v, want the file's %+v", e.stamp, want)
	}
	missing := &zoneEntry{origin: "b.test.", file: e.file + ".missing"}
	if _, _, _, err := cat.loadFirst(missing); err == nil {
		t.Error("a missing file loaded")
	}
}
