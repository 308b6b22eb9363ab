package controlplane

import (
	"time"

	"github.com/ringdns/ringdns/zone"
)

// A zone updated in place (zone.Zone.Apply, by an IXFR in or the reload
// of a changed file) shares its arenas with the versions before it, and
// the blocks its updates replaced stay in them (zone.Zone.Superseded).
// Once those pass server.rebuild-superseded percent of the memory the
// version holds, the catalog builds the version's records again into a
// table of their own (zone.Zone.Rebuild), in the background, off the
// serving path and without the catalog's lock, and publishes it by the
// one publication path, the same pointer swap, if the version is still
// the one served; a newer version made meanwhile is looked at in turn.
// Superseded reads the whole table, so it is measured only once the
// updates since the last measure appended a sixty-fourth of the zone's
// memory, or after rebuildCheckEvery of them (removals append little).

// rebuildCheckEvery is the most publications of a zone's updated versions
// between two measures of what they superseded.
const rebuildCheckEvery = 16

// rebuildState is a zone's record of the measures and rebuilds of its
// line of versions. Guarded by the catalog's mu.
type rebuildState struct {
	// running is set while a measure or a rebuild runs.
	running bool
	// checked is the Appended of the version last measured, updates the
	// publications of versions since.
	checked int
	updates int
}

// considerRebuild starts, for e's version just published, the measure of
// what its line superseded and the rebuild it may call for (see above).
// c.mu must be held.
func (c *Catalog) considerRebuild(e *zoneEntry) {
	z, st := e.cur, &e.rebuild
	if c.rebuildShare >= 100 || c.rebuildShare <= 0 || z == nil || e.catz != nil || st.running {
		return
	}
	app := z.Appended()
	if app < st.checked {
		// A version loaded or rebuilt since: a line of its own.
		st.checked, st.updates = 0, 0
	}
	if app == 0 {
		return
	}
	st.updates++
	if app-st.checked < z.MemoryBytes()/64 && st.updates < rebuildCheckEvery {
		return
	}
	st.running = true
	c.rebuildWG.Add(1)
	go func() {
		defer c.rebuildWG.Done()
		c.rebuildIfDue(e, z)
	}()
}

// rebuildIfDue measures what z's line superseded and, when that is over
// the bound, rebuilds z and publishes the rebuilt version in its place.
func (c *Catalog) rebuildIfDue(e *zoneEntry, z *zone.Zone) {
	start := time.Now()
	sup, mem := z.Superseded(), z.MemoryBytes()
	due := sup*100 > c.rebuildShare*mem
	c.mu.Lock()
	e.rebuild.checked, e.rebuild.updates = z.Appended(), 0
	if !due {
		e.rebuild.running = false
		c.mu.Unlock()
		c.log.Debug("measured what the zone's updates superseded", "zone", e.origin, "serial", z.Serial(),
			"superseded_bytes", sup, "bytes", mem, "duration", time.Since(start))
		return
	}
	c.mu.Unlock()
	nz, err := z.Rebuild()
	if c.publishRebuilt(e, z, nz, err) {
		// As after a reload that built large tables: the build's
		// garbage and the line's arenas go back to the kernel.
		c.freeBuilt(mem)
	}
	c.log.Info("zone table rebuilt: its updates had superseded a share of its memory", "zone", e.origin, "serial", z.Serial(),
		"superseded_bytes", sup, "bytes_before", mem, "duration", time.Since(start))
}

// publishRebuilt publishes nz, z's records rebuilt, in z's place if z is
// still the version of e served; it reports whether it did.
func (c *Catalog) publishRebuilt(e *zoneEntry, z, nz *zone.Zone, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.rebuild.running = false
	if err != nil {
		// The records of a version served always build: this is a
		// defect, and the version served stays.
		c.log.Error("cannot rebuild the zone's table; its updated version stays served", "zone", e.origin, "err", err)
		return false
	}
	if e.cur != z || e.gone {
		c.log.Info("rebuilt table not published: a newer version is served", "zone", e.origin, "serial", z.Serial())
		return false
	}
	if c.onReplace != nil {
		c.onReplace(e.origin, z, nz)
	}
	if e.sec != nil {
		e.sec.mu.Lock()
		if e.sec.copyOf == z {
			e.sec.copyOf = nz
		}
		e.sec.mu.Unlock()
	}
	e.cur = nz
	if _, err := c.publish(); err != nil {
		e.cur = z
		c.log.Error("cannot publish the zone's rebuilt table; its updated version stays served", "zone", e.origin, "err", err)
		return false
	}
	return true
}

// RebuildIdle waits until the measures and rebuilds started so far have
// ended (tests, shutdown).
func (c *Catalog) RebuildIdle() { c.rebuildWG.Wait() }
