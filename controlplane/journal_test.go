package controlplane

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringdns/ringdns/zone"
)

// journalVersions parses example. at serials 1..n, each with one more host.
func journalVersions(t *testing.T, n int) []*zone.Zone {
	t.Helper()
	var out []*zone.Zone
	for i := 1; i <= n; i++ {
		out = append(out, parseTestZone(t, xfrZoneText(i, 5+i, "")))
	}
	return out
}

func newTestJournals(t *testing.T, cfg *Config) *Journals {
	t.Helper()
	j := NewJournals(cfg, nil, quietLog())
	t.Cleanup(j.Close)
	return j
}

func publishAll(t *testing.T, j *Journals, zs ...*zone.Zone) {
	t.Helper()
	for _, z := range zs {
		j.Published("example.", z)
	}
	if !j.Idle(10 * time.Second) {
		t.Fatal("journal not done within 10 s")
	}
}

// chainSerials returns the serials the chain from..to passes, nil when
// there is none.
func chainSerials(j *Journals, from, to uint32) []uint32 {
	sets := j.Chain("example.", from, to)
	if sets == nil {
		return nil
	}
	out := []uint32{sets[0].from}
	for _, cs := range sets {
		out = append(out, cs.to)
	}
	return out
}

func TestJournalBoundsAndReload(t *testing.T) {
	dir := t.TempDir()
	cfg := testXfrConfig(t, dir)
	cfg.Server.JournalVersions = 3
	vs := journalVersions(t, 6)

	j := newTestJournals(t, cfg)
	publishAll(t, j, vs...)
	// Five differences made, three kept: 3->4->5->6.
	if n, _ := j.Versions("example."); n != 3 {
		t.Fatalf("%d versions kept, want 3", n)
	}
	if got := chainSerials(j, 3, 6); len(got) != 4 {
		t.Fatalf("chain from 3: %v", got)
	}
	if chainSerials(j, 2, 6) != nil {
		t.Fatal("a dropped version still answers")
	}
	if chainSerials(j, 3, 5) != nil {
		t.Fatal("a chain to a serial not served")
	}
	j.Close()

	// After a restart serving 6, the file answers as before.
	path := filepath.Join(dir, "example.zone.journal")
	j2 := newTestJournals(t, cfg)
	publishAll(t, j2, vs[5])
	if got := chainSerials(j2, 3, 6); len(got) != 4 {
		t.Fatalf("after restart, chain from 3: %v", got)
	}
	j2.Close()

	// A crash mid-append leaves a partial frame: it is cut off.
	good, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(append([]byte(nil), good...), 0, 0, 1, 0, 9, 9), 0o644); err != nil {
		t.Fatal(err)
	}
	j3 := newTestJournals(t, cfg)
	publishAll(t, j3, vs[5])
	if got := chainSerials(j3, 4, 6); len(got) != 3 {
		t.Fatalf("after a torn write, chain from 4: %v", got)
	}
	if now, _ := os.ReadFile(path); len(now) != len(good) {
		t.Fatalf("file is %d bytes after cutting the torn frame, want %d", len(now), len(good))
	}
	j3.Close()

	// A corrupted frame in the middle: the journal stops before it, and
	// no longer leads to 6, so it is discarded.
	bad := append([]byte(nil), good...)
	bad[len(bad)-10] ^= 0xFF
	os.WriteFile(path, bad, 0o644)
	j4 := newTestJournals(t, cfg)
	publishAll(t, j4, vs[5])
	if n, _ := j4.Versions("example."); n != 0 || chainSerials(j4, 5, 6) != nil {
		t.Fatalf("a journal with a corrupt last frame kept %d versions", n)
	}
	j4.Close()

	// A journal that does not lead to the serial served at start is
	// discarded.
	os.WriteFile(path, good, 0o644)
	j5 := newTestJournals(t, cfg)
	publishAll(t, j5, vs[4]) // serving 5, the journal ends at 6
	if n, _ := j5.Versions("example."); n != 0 {
		t.Fatalf("a journal leading elsewhere kept %d versions", n)
	}
}

func TestJournalBytesBound(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	vs := journalVersions(t, 4)
	j := newTestJournals(t, cfg)
	publishAll(t, j, vs[0], vs[1])
	_, one := j.Versions("example.")
	// Room for two differences of this size, not three.
	j.maxBytes = 2*one + one/2
	publishAll(t, j, vs[2], vs[3])
	if n, size := j.Versions("example."); n != 2 || size > j.maxBytes {
		t.Fatalf("%d versions, %d bytes, bound %d", n, size, j.maxBytes)
	}
	// A serial that goes backwards empties the journal.
	publishAll(t, j, vs[1])
	if n, _ := j.Versions("example."); n != 0 {
		t.Fatalf("%d versions after the serial went backwards", n)
	}
}

// TestJournalTrimSlack: over journal-versions, the journal is cut a tenth
// below it, so that the next versions are appended without rewriting the
// file each time.
func TestJournalTrimSlack(t *testing.T) {
	dir := t.TempDir()
	cfg := testXfrConfig(t, dir)
	cfg.Server.JournalVersions = 20
	vs := journalVersions(t, 23)
	j := newTestJournals(t, cfg)
	publishAll(t, j, vs[:21]...) // 20 differences: at the bound
	if n, _ := j.Versions("example."); n != 20 {
		t.Fatalf("%d versions at the bound, want 20", n)
	}
	publishAll(t, j, vs[21]) // 21: cut to 18
	if n, _ := j.Versions("example."); n != 18 {
		t.Fatalf("%d versions after going over, want 18", n)
	}
	path := filepath.Join(dir, "example.zone.journal")
	st, _ := os.Stat(path)
	publishAll(t, j, vs[22]) // appended, not rewritten
	st2, _ := os.Stat(path)
	if n, _ := j.Versions("example."); n != 19 || st2.Size() <= st.Size() || !os.SameFile(st, st2) {
		t.Fatalf("%d versions, file %d -> %d bytes, same file %v: want 19, appended in place", n, st.Size(), st2.Size(), os.SameFile(st, st2))
	}
}
