package controlplane

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/zone"
)

// ErrNoZones is returned at startup when not a single configured zone
// loaded: a server with nothing to serve is a configuration mistake, and
// exiting says so louder than answering REFUSED to everything.
var ErrNoZones = errors.New("no zone loaded")

// ErrUnknownZone is returned when a reload names a zone that is not
// configured.
var ErrUnknownZone = errors.New("zone not configured")

// MaxReloadZones bounds the zone names in one reload request. Each name is
// looked up among the configured zones; more than this is a script gone
// wrong, and a reload without names reloads every zone anyway.
const MaxReloadZones = 1024

// Catalog holds the configured zones, the version of each that is being
// served, and the published snapshot. It is the only writer of the snapshot
// pointer that the workers and the TCP server read.
type Catalog struct {
	cfg  dataplane.Config
	fsys fs.FS
	log  *slog.Logger

	// Current is the published snapshot. Workers load it once per batch.
	Current atomic.Pointer[dataplane.Snapshot]

	// mu serialises reloads (control socket, SIGHUP) so that two never
	// build from the same previous state; readers of Status take it too.
	mu      sync.Mutex
	entries []*zoneEntry
	// emu guards entries for readers that do not hold mu (NOTIFY,
	// ringctl, the metrics): entries changes only when a catalog zone's
	// members do (catzmembers.go), with both mu and emu held, and is
	// replaced then, never changed in place.
	emu sync.RWMutex
	// run is where the secondary zones' loops run while RunSecondaries
	// does, so that members added by a catalog zone start theirs; nil
	// before and after. Guarded by mu.
	run *secondaryRun

	reloads        atomic.Uint64
	reloadFailures atomic.Uint64
	lastSwap       atomic.Int64 // nanoseconds of the last pointer swap
	lastBuild      atomic.Int64 // nanoseconds to build the last Set and Snapshot

	// xfr is the state shared by the secondary zones (xfrin.go).
	xfr xfrIn

	// onPublish, when set, is called after each swap for every zone whose
	// version changed with it (old nil for a zone's first version), with
	// c.mu held: the one place where reloads and transfers in alike are
	// seen, for the journal and NOTIFY out.
	onPublish func(origin string, old, new *zone.Zone)
	// onKnown, when set, is called with c.mu held before a version made
	// from known differences is published (an IXFR's, a reload's applied
	// as a change), with those differences, so that the journal records
	// them instead of computing them (Journals.Known).
	onKnown func(origin string, from, to *zone.Zone, sets []*changeset)
	// onLoadTime, when set, is told each transferred version published
	// and how long after its new serial was noticed (RSSAC002 load-time).
	onLoadTime func(origin string, serial uint32, d time.Duration)
	// onReplace, when set, is called with c.mu held before a version is
	// replaced by its records rebuilt (rebuild.go), the same zone in a
	// table of its own, so that the journal takes it for the version it
	// replaces.
	onReplace func(origin string, old, new *zone.Zone)
	// rebuildShare is server.rebuild-superseded; rebuildWG counts the
	// measures and rebuilds running (rebuild.go).
	rebuildShare int
	rebuildWG    sync.WaitGroup
	// onAdd and onRemove, when set, are called with c.mu held for each
	// zone a catalog zone adds (with its file) and removes, so that its
	// journal is kept beside its copy and goes with it.
	onAdd    func(origin, file string)
	onRemove func(origin string)
	// afterUpdate is the collection made after a large zone's version
	// made by zone.Apply is published (updategc.go).
	afterUpdate updateCollector
	// keepAhead is server.update-ahead-keep: the arrays made for a large
	// zone's next update stay through the hold's release, and a version
	// loaded has them made too.
	keepAhead bool
	// prepareNext, when set (tests), stands for zone.Zone.PrepareNext
	// at an update's notice (expectUpdate).
	prepareNext func(*zone.Zone)
	// freeAbove and freeMemory are freeBuilt's bound (freeAfterBuild)
	// and its return of memory (debug.FreeOSMemory); tests set their own.
	freeAbove  int
	freeMemory func()
}

// zoneEntry is one configured zone and the version of it being served.
type zoneEntry struct {
	origin string
	file   string
	zonemd string // the zonemd setting, applied by checkZONEMD

	cur     *zone.Zone // nil until the zone has loaded once
	stamp   fileStamp  // of the file cur was built from
	loaded  time.Time  // when cur was built
	lastErr error      // of the last attempt, nil when it succeeded
	lastDur time.Duration
	loads   uint64
	fails   uint64

	// sec is the transfer state of a secondary zone, nil for a zone
	// served from its file alone.
	sec *secondary
	// pub is the version of the zone in the snapshot last published.
	pub *zone.Zone
	// soaExpire is the SOA expire field of soaOf, for the EDNS EXPIRE
	// option of a primary zone's answers.
	soaExpire uint32
	soaOf     *zone.Zone

	// catz is set for a catalog zone whose members are served; catalog
	// and memberID for a member zone of one: the catalog's origin and
	// the member's unique ID in it (RFC 9432 section 4.1). See
	// catzmembers.go.
	catz     *catalogState
	catalog  string
	memberID string
	// gone is set, with mu held, when a member is removed from the
	// catalog: its loop's transfer in flight is not published.
	gone bool
	// rebuild is the record of what cur's updates superseded (rebuild.go).
	rebuild rebuildState
}

// fileStamp identifies the content of a zone file so that an unchanged file
// is not rebuilt.
type fileStamp struct {
	size  int64
	sum   [sha256.Size]byte
	valid bool
	// how and known travel from build to loadEntry with a version made
	// by applying the file's difference to the version served: how it
	// was made (zone.Reloaded.How) and the difference, for the journal.
	how   string
	known []*changeset
}

// NewCatalog prepares a catalog for the configured zones. Nothing is loaded
// until Load.
func NewCatalog(c *Config, log *slog.Logger) *Catalog {
	cat := &Catalog{
		cfg: dataplane.Config{
			UDPSize:  c.Server.UDPSize,
			NSID:     []byte(c.Server.NSID),
			Identity: c.Server.Identity,
			Version:  c.Server.Version,
		},
		fsys:         c.FS,
		log:          log,
		rebuildShare: c.Server.RebuildSuperseded,
		afterUpdate: updateCollector{above: collectAfterUpdateAbove, delay: collectAfterUpdateDelay, collect: runtime.GC,
			hold: time.Duration(c.Server.UpdateMemoryHold)},
		freeAbove:  freeAfterBuild,
		freeMemory: debug.FreeOSMemory,
		xfr: xfrIn{keys: c.TSIGKeys(), sem: make(chan struct{}, transfersInMax),
			soa: make(chan struct{}, soaQueriesMax), now: time.Now},
	}
	cat.keepAhead = c.Server.UpdateAheadKeep
	cat.afterUpdate.release = func() {
		if !cat.keepAhead {
			cat.dropAhead()
		}
		debug.FreeOSMemory()
	}
	for i := range c.Zones {
		z := &c.Zones[i]
		e := &zoneEntry{origin: CanonicalOrigin(z.Origin), file: z.File, zonemd: z.ZONEMD}
		if z.Secondary() {
			e.sec = newSecondary(z)
			e.sec.placeholder = placeholderZone(e.origin, log)
			if z.Catalog() {
				e.catz = &catalogState{cfg: z}
			}
		}
		cat.entries = append(cat.entries, e)
	}
	return cat
}

// Load loads every zone and publishes the first snapshot. A zone that fails
// is logged and skipped; the others are served. Load fails only when no
// zone loaded at all (ErrNoZones) or the zones cannot form a set.
func (c *Catalog) Load() (*control.ReloadResult, error) {
	res, err := c.reload(nil)
	if err != nil {
		return res, err
	}
	if c.Current.Load() == nil {
		return res, ErrNoZones
	}
	return res, nil
}

// Reload re-reads the named zones (every zone when names is empty), keeps
// the served version of any zone that fails, and publishes the result with
// one pointer swap. A zone named more than once, in any spelling that
// names the same zone, is reloaded once. The error is about the request
// itself (an unknown zone, too many names); failed zones are reported in
// the result.
func (c *Catalog) Reload(names []string) (*control.ReloadResult, error) {
	return c.reload(names)
}

func (c *Catalog) reload(names []string) (*control.ReloadResult, error) {
	if len(names) > MaxReloadZones {
		return nil, fmt.Errorf("reload names %d zones; at most %d per request (split the list, or reload without names to reload every zone)",
			len(names), MaxReloadZones)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()

	todo := c.entries
	if len(names) > 0 {
		todo = nil
		seen := make(map[*zoneEntry]bool, len(names))
		for _, n := range names {
			e := c.find(CanonicalOrigin(n))
			if e == nil {
				return nil, fmt.Errorf("%w: %s", ErrUnknownZone, CanonicalOrigin(n))
			}
			if !seen[e] {
				seen[e] = true
				todo = append(todo, e)
			}
		}
	}

	res := &control.ReloadResult{}
	changed := false
	built := 0 // bytes of the tables built by this reload
	for _, e := range todo {
		zr := c.loadEntry(e)
		switch zr.Status {
		case control.StatusFailed:
			res.Failed++
		case control.StatusLoaded:
			changed = true
			built += zr.Bytes
		}
		res.Zones = append(res.Zones, zr)
	}

	// A reload that changed nothing keeps the published snapshot: there is
	// nothing new to swap in.
	if changed || c.Current.Load() == nil {
		pub, err := c.publish()
		if err != nil {
			c.reloadFailures.Add(1)
			return res, err
		}
		res.BuildMicros = float64(pub.build.Nanoseconds()) / 1e3
		res.SwapMicros = float64(pub.swap.Nanoseconds()) / 1e3
	}
	c.freeBuilt(built)
	res.Seconds = time.Since(start).Seconds()
	c.reloads.Add(1)
	if res.Failed > 0 {
		c.reloadFailures.Add(1)
	}
	c.log.Info("reload", "zones", len(todo), "failed", res.Failed, "serving", c.serving(),
		"build_us", res.BuildMicros, "swap_us", res.SwapMicros, "duration", time.Since(start))
	return res, nil
}

// published is what one publication took: building the set and its
// snapshot, and the pointer swap.
type published struct {
	build, swap time.Duration
}

// publish builds a snapshot of every zone's version served and swaps it in.
// It is the one publication path: reloads and transfers in both end here.
// A secondary zone that has expired or has no data yet is in the snapshot
// marked expired, so that queries for it are answered SERVFAIL rather than
// REFUSED or from data the primaries no longer vouch for. With no zone at
// all nothing is published. A catalog zone's new version changes the
// zones served first (reconcileCatalogs), in the same snapshot. c.mu must
// be held.
func (c *Catalog) publish() (published, error) {
	c.reconcileCatalogs()
	var zones []*zone.Zone
	var expired []bool
	var expire []dataplane.ZoneExpire
	var owners []*zoneEntry
	for _, e := range c.entries {
		z, exp := e.cur, false
		if e.sec != nil {
			exp = e.sec.isExpired()
			if z == nil {
				z, exp = e.sec.placeholder, true
			}
		}
		if z == nil {
			continue
		}
		zones = append(zones, z)
		expired = append(expired, exp)
		expire = append(expire, c.expireOption(e, z))
		owners = append(owners, e)
	}
	if len(zones) == 0 {
		return published{}, nil
	}
	b0 := time.Now()
	set, err := zone.NewSet(zones)
	if err != nil {
		// The configuration rejects duplicate origins, so this is a
		// zone whose file declares an origin another zone uses; nothing
		// is published and the previous snapshot keeps serving.
		return published{}, fmt.Errorf("building the zone set: %w", err)
	}
	snap := dataplane.NewSnapshotZones(set, c.cfg, expired, expire)
	b1 := time.Now()
	c.Current.Store(snap)
	b2 := time.Now()
	for i, e := range owners {
		if e.sec != nil {
			e.sec.mu.Lock()
			e.sec.servedExpired = expired[i]
			e.sec.mu.Unlock()
		}
	}
	for _, e := range c.entries {
		if e.cur != e.pub {
			old := e.pub
			e.pub = e.cur
			if c.onPublish != nil && e.cur != nil {
				c.onPublish(e.origin, old, e.cur)
			}
			c.considerRebuild(e)
			switch {
			case e.cur != nil && e.cur.Applied() != "":
				c.afterUpdate.soon(e.cur.MemoryBytes(), e.cur.PrepareNext)
			case e.cur != nil && c.keepAhead:
				// Loaded or built from its file: with
				// server.update-ahead-keep its first update finds
				// its arrays made too, after a collection, from the
				// memory the load's garbage leaves free.
				c.afterUpdate.soon(e.cur.MemoryBytes(), e.cur.PrepareNext)
			}
		}
	}
	c.lastBuild.Store(int64(b1.Sub(b0)))
	c.lastSwap.Store(int64(b2.Sub(b1)))
	return published{build: b1.Sub(b0), swap: b2.Sub(b1)}, nil
}

// serving counts the zones with a version served.
func (c *Catalog) serving() int {
	n := 0
	for _, e := range c.entries {
		if e.cur != nil {
			n++
		}
	}
	return n
}

func (c *Catalog) find(origin string) *zoneEntry {
	c.emu.RLock()
	defer c.emu.RUnlock()
	for _, e := range c.entries {
		if e.origin == origin {
			return e
		}
	}
	return nil
}

// loadEntry reloads one zone unless its file is unchanged. On failure the
// entry keeps serving its previous version.
func (c *Catalog) loadEntry(e *zoneEntry) control.ZoneResult {
	start := time.Now()
	zr := control.ZoneResult{Origin: e.origin, File: e.file}
	if e.sec != nil {
		// The copy of a version applied from an IXFR is written after
		// its publication: read the file once it is there, and know it
		// for the version served.
		if st, ok := e.sec.writtenCopy(e.cur); ok {
			e.stamp = st
		}
	}
	z, stamp, status, err := c.build(e)
	zr.Applied = stamp.how
	e.lastDur = time.Since(start)
	zr.Seconds = e.lastDur.Seconds()
	if err != nil && e.sec != nil && e.cur == nil && errors.Is(err, fs.ErrNotExist) {
		// A secondary zone has no copy on disk until its first transfer:
		// that is no failure, and the zone answers SERVFAIL until then.
		c.log.Info("secondary zone has no copy on disk yet; it is served once transferred", "zone", e.origin, "file", e.file)
		zr.Status = control.StatusNoCopy
		return zr
	}
	if err != nil {
		e.lastErr = err
		e.fails++
		zr.Status = control.StatusFailed
		zr.Error = err.Error()
		var le *zone.LoadError
		if errors.As(err, &le) {
			zr.Line = le.Line
		}
		if e.cur != nil {
			c.log.Error("zone load failed, previous version kept", "zone", e.origin, "err", err,
				"serial", e.cur.Serial())
		} else {
			c.log.Error("zone load failed, zone not served", "zone", e.origin, "err", err)
		}
	} else {
		e.lastErr = nil
		zr.Status = status
		if status == control.StatusLoaded {
			if stamp.known != nil && c.onKnown != nil {
				c.onKnown(e.origin, e.cur, z, stamp.known)
			}
			stamp.how, stamp.known = "", nil
			e.cur, e.stamp, e.loaded = z, stamp, time.Now()
			e.loads++
			c.log.Info("zone loaded", "zone", e.origin, "file", e.file, "serial", z.Serial(),
				"records", z.Records(), "bytes", z.MemoryBytes(), "duration", e.lastDur, "applied", zr.Applied)
			for _, w := range z.Warnings() {
				c.log.Warn("zone warning", "zone", e.origin, "warning", w)
			}
			if e.sec != nil {
				c.secondaryLoaded(e)
			}
		} else {
			// The file may have changed in its text and not in its
			// records: its stamp is the one now.
			stamp.how, stamp.known = "", nil
			e.stamp = stamp
			c.log.Info("zone unchanged", "zone", e.origin, "file", e.file, "serial", e.cur.Serial())
		}
	}
	if e.cur != nil {
		zr.Serving = true
		zr.Serial, zr.Records, zr.Bytes = e.cur.Serial(), e.cur.Records(), e.cur.MemoryBytes()
		zr.Warnings = e.cur.Warnings()
		zr.ZONEMD = zonemdState(e.cur, e.zonemd)
	}
	return zr
}

// placeholderZone is what a secondary zone is served as while it has no
// data: an apex that is never answered from (see secondary.placeholder).
func placeholderZone(origin string, log *slog.Logger) *zone.Zone {
	text := "@ 0 IN SOA invalid. invalid. 0 0 0 0 0\n@ 0 IN NS invalid.\n"
	z, err := zone.Parse(strings.NewReader(text), origin, "(awaiting transfer)")
	if err != nil {
		log.Error("secondary zone cannot be answered SERVFAIL before its first transfer", "zone", origin, "err", err)
		return nil
	}
	return z
}

// freeBuilt hands the garbage of building built bytes of tables (a load,
// a transfer's zone, a rebuild) back to the kernel when that is more than
// c.freeAbove. A build leaves garbage of a few times the size of the
// table it made (the parser's objects, the builder's arrays). The
// collector reuses that memory but keeps it resident, so a daemon that
// loaded a TLD would go on holding its build peak. After building large
// tables, collect and hand the free memory back to the kernel, so that
// the resident size reflects what is served. It costs one collection
// (tens of milliseconds for tables that are nearly all pointer-free
// arrays) after a build that took seconds; workers, which allocate
// nothing, keep answering meanwhile.
func (c *Catalog) freeBuilt(built int) {
	if built <= c.freeAbove {
		return
	}
	f0 := time.Now()
	c.freeMemory()
	c.log.Debug("returned the build's memory to the kernel", "built_bytes", built, "duration", time.Since(f0))
}

// freeAfterBuild is the size of the tables built at once (by a reload, a
// transfer or a rebuild) above which their build's garbage is returned to
// the kernel (freeBuilt).
const freeAfterBuild = 32 << 20

// build reads the zone file and parses it, or reports it unchanged when its
// size and content hash match the version served.
//
// A file on disk is hashed as a stream and then loaded by zone.LoadFile,
// which parses as it reads: a TLD's file is never held whole in memory,
// where it would stay through the build. If the file is replaced between
// the two reads, the stamp is of the older content; the next reload then
// sees a different hash and builds again, so nothing stale is kept.
func (c *Catalog) build(e *zoneEntry) (*zone.Zone, fileStamp, string, error) {
	if e.cur == nil && c.fsys == nil {
		return c.loadFirst(e)
	}
	st, data, err := c.stampFile(e.file)
	if err != nil {
		return nil, fileStamp{}, "", &zone.LoadError{Origin: e.origin, File: e.file, Msg: err.Error(), Err: err}
	}
	// The content hash decides, not the modification time: a rewrite within
	// the file system's timestamp granularity can keep size and mtime, a
	// touch changes mtime alone, and hashing costs far less than parsing.
	if e.cur != nil && e.stamp.valid && e.stamp.size == st.size && e.stamp.sum == st.sum {
		return e.cur, e.stamp, control.StatusUnchanged, nil
	}
	if e.cur != nil && e.sec != nil {
		// The copy of a version applied from an IXFR is written after its
		// publication, and the write may have failed: a copy older than
		// the version served is never loaded over it. It is written again.
		if soa, _, err := readCopySOA(e.file, e.origin); err == nil && serialNewer(e.cur.Serial(), soa.Serial) {
			c.log.Warn("the copy on disk is older than the version served (its write failed?); the version served is kept, and its copy written again",
				"zone", e.origin, "file", e.file, "copy_serial", soa.Serial, "serial", e.cur.Serial())
			c.writeCopy(e, e.cur)
			return e.cur, e.stamp, control.StatusUnchanged, nil
		}
	}
	if e.cur != nil {
		return c.rebuild(e, st, data)
	}
	var z *zone.Zone
	if c.fsys != nil {
		z, err = zone.Parse(bytes.NewReader(data), e.origin, e.file)
	} else {
		z, err = zone.LoadFile(e.origin, e.file)
	}
	if err != nil {
		return nil, fileStamp{}, "", err
	}
	if err := checkZONEMD(z, e.zonemd); err != nil {
		return nil, fileStamp{}, "", err
	}
	return z, st, control.StatusLoaded, nil
}

// loadFirst is build for a zone not served yet, from a file on disk: the
// file is hashed for its stamp while zone.LoadFile loads it, not before.
// The hash (0.07 s of CPU for the 119 MB of a million delegations, 0.3 s
// for a signed TLD's 515 MB) was serial time of every start, and the
// load leaves a core idle for a good part of its time. The file is opened for the hash
// before the load opens it, so that a file replaced in between leaves
// the stamp of the older content, as when the hash came first: the next
// reload then sees a changed file and loads it.
func (c *Catalog) loadFirst(e *zoneEntry) (*zone.Zone, fileStamp, string, error) {
	f, err := os.Open(e.file)
	if err != nil {
		return nil, fileStamp{}, "", &zone.LoadError{Origin: e.origin, File: e.file, Msg: err.Error(), Err: err}
	}
	type stamped struct {
		st  fileStamp
		err error
	}
	done := make(chan stamped, 1)
	go func() {
		defer f.Close()
		st, err := stampReader(f)
		done <- stamped{st, err}
	}()
	z, err := zone.LoadFile(e.origin, e.file)
	s := <-done
	if s.err != nil {
		return nil, fileStamp{}, "", &zone.LoadError{Origin: e.origin, File: e.file, Msg: s.err.Error(), Err: s.err}
	}
	if err != nil {
		return nil, fileStamp{}, "", err
	}
	if err := checkZONEMD(z, e.zonemd); err != nil {
		return nil, fileStamp{}, "", err
	}
	return z, s.st, control.StatusLoaded, nil
}

// reloadApplyShare is the share of a zone's records up to which a changed
// file's difference to the version served is applied to it
// (zone.Zone.Apply) rather than the table built from the file: Apply
// itself builds again a change over a tenth of the zone's names.
const reloadApplyShare = 10

// rebuild reads the changed file of a zone that is served as a change to
// the version served (zone.ReloadFile): the file is parsed, compared with
// the version served name by name, and a small difference is applied to
// it; a large one is built as a first load builds. A file that does not
// load leaves the version served, with an error naming the file and line.
func (c *Catalog) rebuild(e *zoneEntry, st fileStamp, data []byte) (*zone.Zone, fileStamp, string, error) {
	limit := max(e.cur.Records()/reloadApplyShare, 1)
	// While the file is parsed and compared, the version served makes
	// the arrays a change applied to it will write (see expectUpdate).
	expecting := c.expectUpdate(e.cur)
	defer func() { c.unexpected(expecting) }()
	var r *zone.Reloaded
	var err error
	if c.fsys != nil {
		r, err = zone.ReloadText(e.cur, data, e.file, limit)
	} else {
		r, err = zone.ReloadFile(e.cur, e.file, limit)
	}
	if err != nil {
		return nil, fileStamp{}, "", err
	}
	if r.Zone == e.cur {
		return e.cur, st, control.StatusUnchanged, nil
	}
	if err := checkZONEMD(r.Zone, e.zonemd); err != nil {
		return nil, fileStamp{}, "", err
	}
	st.how = r.How
	// A new version, applied or built, takes the lineage's arrays or
	// leaves them to be collected with the version served.
	expecting = nil
	if r.Del != nil || r.Add != nil {
		if cs, err := newChangeset(e.cur.Apex(), r.Del, r.Add); err == nil {
			st.known = []*changeset{cs}
		}
	}
	return r.Zone, st, control.StatusLoaded, nil
}

// stampFile hashes a zone file. From the catalog's file system (embedded
// zones, tests) the content is returned too, for parsing; from disk only
// the stamp is, and the file is streamed through the hash.
func (c *Catalog) stampFile(name string) (fileStamp, []byte, error) {
	if c.fsys != nil {
		data, err := fs.ReadFile(c.fsys, name)
		if err != nil {
			return fileStamp{}, nil, err
		}
		return fileStamp{size: int64(len(data)), sum: sha256.Sum256(data), valid: true}, data, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return fileStamp{}, nil, err
	}
	defer f.Close()
	st, err := stampReader(f)
	return st, nil, err
}

// stampReader hashes the content r gives.
func stampReader(r io.Reader) (fileStamp, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{size: n, valid: true}
	h.Sum(st.sum[:0])
	return st, nil
}

// dropAhead lets go of the arrays made for the next update of every zone
// served (zone.Zone.DropAhead), before the hold's release.
func (c *Catalog) dropAhead() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.cur != nil {
			e.cur.DropAhead()
		}
	}
}

// Zones reports every configured zone.
func (c *Catalog) Zones() []control.ZoneStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]control.ZoneStatus, 0, len(c.entries))
	for _, e := range c.entries {
		s := control.ZoneStatus{Origin: e.origin, File: e.file, Loads: e.loads, Failures: e.fails,
			Seconds: e.lastDur.Seconds(), Loaded: e.loaded}
		if e.lastErr != nil {
			s.LastError = e.lastErr.Error()
		}
		if e.cur != nil {
			s.Serving = true
			s.Serial, s.Records, s.Bytes = e.cur.Serial(), e.cur.Records(), e.cur.MemoryBytes()
			s.AheadBytes = e.cur.AheadBytes()
			s.ZONEMD = zonemdState(e.cur, e.zonemd)
		}
		out = append(out, s)
	}
	return out
}

// ReloadCounts reports reloads done, reloads with at least one failure, and
// the durations of the last set build and pointer swap.
func (c *Catalog) ReloadCounts() (reloads, failures uint64, build, swap time.Duration) {
	return c.reloads.Load(), c.reloadFailures.Load(), time.Duration(c.lastBuild.Load()), time.Duration(c.lastSwap.Load())
}

// CheckZones loads every configured zone once without publishing anything,
// for `ringdns check`. It returns one result per zone and an error when any
// zone failed or the zones cannot form a set.
func CheckZones(c *Config, log *slog.Logger) ([]control.ZoneResult, error) {
	cat := NewCatalog(c, log)
	var out []control.ZoneResult
	var zones []*zone.Zone
	var errs []error
	for _, e := range cat.entries {
		zr := cat.loadEntry(e)
		out = append(out, zr)
		switch {
		case zr.Status == control.StatusFailed:
			errs = append(errs, e.lastErr)
		case e.cur != nil:
			zones = append(zones, e.cur)
		}
	}
	if len(zones) > 0 {
		if _, err := zone.NewSet(zones); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}
