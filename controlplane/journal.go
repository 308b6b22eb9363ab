package controlplane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/zone"
)

// Journals keep, per zone, the differences between its successive versions
// for IXFR out (RFC 1995), in memory and in a file beside the zone file
// (FILE.journal), bounded in versions and bytes, the oldest dropped first.
//
// The catalog calls Published after every publication; the differences
// are computed and written by one goroutine of their own, in the order of
// publication, so that neither a reload nor the packet path waits for
// them. Until a difference is journaled, an IXFR for the new version is
// answered by AXFR, which is always correct. After a difference is
// journaled, the zone's NOTIFY targets are told (see NotifyOut), so that
// they ask when the IXFR can be answered.
//
// The file is a sequence of frames, each a 4-byte length, a CRC-32C of the
// payload and the payload: a header frame naming the zone, then one frame
// per difference, appended and synced. A crash mid-append leaves a last
// frame whose length or checksum is wrong; it is cut off at the next
// start. A journal whose differences do not chain (each one's old serial
// the previous one's new serial) to the serial served at start is
// discarded, so a journal never answers for a version that is not served.
type Journals struct {
	maxVersions int
	maxBytes    int64
	memOnly     bool // zones read from Config.FS: no file beside them
	log         *slog.Logger
	// after is called once a publication is journaled: NOTIFY out.
	after func(origin string, z *zone.Zone)

	mu    sync.Mutex
	zones map[string]*journal
	files map[string]string // origin -> zone file

	qmu     sync.Mutex
	queue   []publication
	pending atomic.Int64          // publications not yet journaled
	seen    map[string]*zone.Zone // the version last queued, per origin
	// known holds, per origin, the differences that made a version from
	// the one before it, when whoever made it knew them (an IXFR in, a
	// reload applied as a change): record takes them instead of
	// computing the difference of the two versions' walks.
	known map[string]knownChange
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

type publication struct {
	origin string
	z      *zone.Zone
}

// knownChange is the differences from version from to version to, in
// order, each a changeset of its own (an IXFR's deltas).
type knownChange struct {
	from, to *zone.Zone
	sets     []*changeset
}

// journal is one zone's journal.
type journal struct {
	path string // "" when kept in memory only
	last *zone.Zone
	sets []*changeset
	size int64 // payload bytes of sets
}

// changeset is one difference between successive versions: the SOA before
// and after, the records deleted and added (other than the SOA), each a
// sequence of (owner name, type, TTL, RDATA length, RDATA) in wire form.
type changeset struct {
	from, to       uint32
	fromSOA, toSOA soaRecord
	del, add       []byte
	payload        int // bytes of the frame's payload
	records        int // records deleted and added, the SOAs apart
}

// NewJournals makes the journals of the zones of the normalised
// configuration cfg and starts their goroutine; Close stops it. after,
// when not nil, is called after each publication is journaled.
func NewJournals(cfg *Config, after func(origin string, z *zone.Zone), log *slog.Logger) *Journals {
	j := &Journals{maxVersions: cfg.Server.JournalVersions, maxBytes: cfg.Server.JournalBytes, memOnly: cfg.FS != nil,
		log: log, after: after, zones: map[string]*journal{}, files: map[string]string{},
		seen: map[string]*zone.Zone{}, known: map[string]knownChange{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	for _, z := range cfg.Zones {
		j.files[CanonicalOrigin(z.Origin)] = z.File
	}
	go j.run()
	return j
}

// Published tells the journals that z is now the served version of origin;
// the catalog calls it for every zone served after each publication (the
// publish hook), and a version already seen is ignored. It never blocks on
// the journal's work, and may be called with the catalog's lock held.
func (j *Journals) Published(origin string, z *zone.Zone) {
	if j == nil || z == nil {
		return
	}
	j.qmu.Lock()
	defer j.qmu.Unlock()
	if j.seen[origin] == z {
		// The catalog reports every zone at each publication; only a
		// new version is news.
		return
	}
	j.seen[origin] = z
	j.queue = append(j.queue, publication{origin, z})
	j.pending.Add(1)
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// Replaced tells the journals that version nz of origin replaces old, the
// same records in a table rebuilt (rebuild.go), before nz is published: a
// publication of nz is then not news, and differences known from old
// count from nz. It may be called with the catalog's lock held.
func (j *Journals) Replaced(origin string, old, nz *zone.Zone) {
	if j == nil {
		return
	}
	j.qmu.Lock()
	if j.seen[origin] == old {
		j.seen[origin] = nz
	}
	if k, ok := j.known[origin]; ok && k.from == old {
		k.from = nz
		j.known[origin] = k
	}
	for i := range j.queue {
		if j.queue[i].origin == origin && j.queue[i].z == old {
			j.queue[i].z = nz
		}
	}
	j.qmu.Unlock()
	j.mu.Lock()
	if jr := j.zones[origin]; jr != nil && jr.last == old {
		jr.last = nz
	}
	j.mu.Unlock()
}

// Known tells the journals the differences that made version to of origin
// from version from, before to is published: record journals them as
// they are when from is the version journaled last and they lead from
// its serial to to's, and computes the difference otherwise. Each
// difference is a changeset (newChangeset). It never blocks on the
// journal's work, and may be called with the catalog's lock held.
func (j *Journals) Known(origin string, from, to *zone.Zone, sets []*changeset) {
	if j == nil || from == nil || to == nil || len(sets) == 0 {
		return
	}
	j.qmu.Lock()
	defer j.qmu.Unlock()
	j.known[origin] = knownChange{from: from, to: to, sets: sets}
}

// takeKnown returns and forgets the differences known to lead from old to
// z, or nil.
func (j *Journals) takeKnown(origin string, old, z *zone.Zone) []*changeset {
	j.qmu.Lock()
	defer j.qmu.Unlock()
	k, ok := j.known[origin]
	if !ok || k.to != z {
		return nil
	}
	delete(j.known, origin)
	if k.from != old || k.sets[0].from != old.Serial() || !chains(k.sets, z.Serial()) {
		return nil
	}
	return k.sets
}

// Track gives origin, a zone served that is not configured (a catalog
// zone's member), a journal file beside its zone file, as a configured
// zone has; it is called before the zone's first publication.
func (j *Journals) Track(origin, file string) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.files[origin] = file
}

// Forget drops the journal of origin, a zone no longer served (a catalog
// zone's member removed or reset), and the version last seen of it, so
// that a zone of that name served again starts from nothing. Its file,
// if any, is the caller's to delete.
func (j *Journals) Forget(origin string) {
	if j == nil {
		return
	}
	j.qmu.Lock()
	delete(j.seen, origin)
	delete(j.known, origin)
	j.qmu.Unlock()
	j.mu.Lock()
	delete(j.zones, origin)
	delete(j.files, origin)
	j.mu.Unlock()
}

// Close stops the goroutine after the publication in hand.
func (j *Journals) Close() {
	if j == nil {
		return
	}
	select {
	case <-j.stop:
	default:
		close(j.stop)
	}
	<-j.done
}

// Idle waits until every publication so far has been journaled (and its
// NOTIFY started), for tests; at most d.
func (j *Journals) Idle(d time.Duration) bool {
	end := time.Now().Add(d)
	for j.pending.Load() > 0 {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func (j *Journals) run() {
	defer close(j.done)
	for {
		select {
		case <-j.stop:
			return
		case <-j.wake:
		}
		for {
			j.qmu.Lock()
			if len(j.queue) == 0 {
				j.qmu.Unlock()
				break
			}
			p := j.queue[0]
			j.queue = j.queue[1:]
			j.mu.Lock()
			j.qmu.Unlock()
			changed := j.record(p.origin, p.z)
			j.mu.Unlock()
			if changed && j.after != nil {
				j.after(p.origin, p.z)
			}
			j.pending.Add(-1)
		}
	}
}

// record journals the publication of z; it reports whether z is a
// version not seen before (a new serial, or the first at start). j.mu is
// held.
func (j *Journals) record(origin string, z *zone.Zone) bool {
	jr := j.zones[origin]
	if jr == nil {
		jr = j.open(origin, z)
		j.zones[origin] = jr
		return true
	}
	old := jr.last
	if old == z {
		return false
	}
	jr.last = z
	if old.Serial() == z.Serial() {
		// The same serial with other content: a secondary cannot tell the
		// versions apart, and no difference can be named by serials.
		j.log.Warn("zone changed without a new serial; its journal is discarded and secondaries keep the old version until the serial changes",
			"zone", origin, "serial", z.Serial())
		j.reset(origin, jr)
		return false
	}
	if serialCompare(z.Serial(), old.Serial()) < 0 {
		j.log.Warn("zone serial went backwards; its journal is discarded", "zone", origin,
			"old_serial", old.Serial(), "serial", z.Serial())
		j.reset(origin, jr)
		return true
	}
	if sets := j.takeKnown(origin, old, z); sets != nil {
		for _, cs := range sets {
			j.add(origin, jr, cs)
		}
		return true
	}
	// The difference of a large zone takes a while (two walks): IXFR
	// requests, which read the journals under j.mu, are not held up
	// meanwhile. Only this goroutine changes the journals, so nothing
	// else changes them in between; an IXFR asked meanwhile finds
	// jr.last newer than the last difference, and gets the whole zone.
	j.mu.Unlock()
	cs, err := diffVersions(old, z)
	j.mu.Lock()
	if err != nil {
		j.log.Error("journal: cannot compute the difference; IXFR falls back to AXFR", "zone", origin, "err", err)
		j.reset(origin, jr)
		return true
	}
	j.add(origin, jr, cs)
	return true
}

// open loads a zone's journal from its file at the first publication,
// keeping it only when it chains to z's serial.
func (j *Journals) open(origin string, z *zone.Zone) *journal {
	jr := &journal{last: z}
	if !j.memOnly && j.files[origin] != "" {
		jr.path = j.files[origin] + ".journal"
	}
	if jr.path == "" {
		return jr
	}
	sets, good, total, err := readJournal(jr.path, origin)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return jr
	case err != nil:
		j.log.Warn("journal unreadable; discarded", "zone", origin, "file", jr.path, "err", err)
		j.reset(origin, jr)
		return jr
	}
	if len(sets) > 0 && !chains(sets, z.Serial()) {
		j.log.Info("journal does not lead to the serial served; discarded", "zone", origin, "file", jr.path,
			"serial", z.Serial(), "journal_from", sets[0].from, "journal_to", sets[len(sets)-1].to)
		j.reset(origin, jr)
		return jr
	}
	jr.sets = sets
	for _, cs := range sets {
		jr.size += int64(cs.payload)
	}
	if good != total {
		// A frame cut short by a crash: rewrite the file without it, so
		// that appends follow the last good frame.
		j.log.Warn("journal ends in an incomplete record (a crash mid-write); it is cut off", "zone", origin,
			"file", jr.path, "good_bytes", good, "file_bytes", total)
		j.rewrite(origin, jr)
	}
	j.trim(origin, jr)
	j.log.Info("journal loaded", "zone", origin, "file", jr.path, "versions", len(jr.sets), "bytes", jr.size)
	return jr
}

// chains reports whether each set's old serial is the previous set's new
// serial and the last one's new serial is to.
func chains(sets []*changeset, to uint32) bool {
	for i := 1; i < len(sets); i++ {
		if sets[i].from != sets[i-1].to {
			return false
		}
	}
	return len(sets) == 0 || sets[len(sets)-1].to == to
}

// Chain returns the differences that lead from serial from to serial to,
// the serial served, or nil when the journal of origin cannot: it does not
// reach back to from, or does not reach to.
func (j *Journals) Chain(origin string, from, to uint32) []*changeset {
	j.mu.Lock()
	defer j.mu.Unlock()
	jr := j.zones[origin]
	if jr == nil || jr.last == nil || jr.last.Serial() != to {
		return nil
	}
	for i, cs := range jr.sets {
		if cs.from == from {
			out := append([]*changeset(nil), jr.sets[i:]...)
			if !chains(out, to) {
				return nil
			}
			return out
		}
	}
	return nil
}

// Versions reports the versions and payload bytes of origin's journal.
func (j *Journals) Versions(origin string) (int, int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if jr := j.zones[origin]; jr != nil {
		return len(jr.sets), jr.size
	}
	return 0, 0
}

// add appends cs to the journal and its file, then drops the oldest
// differences over the bounds.
func (j *Journals) add(origin string, jr *journal, cs *changeset) {
	frame := cs.frame()
	cs.payload = len(frame) - 8
	if int64(cs.payload) > j.maxBytes {
		j.log.Info("difference larger than journal-bytes; not journaled, IXFR falls back to AXFR", "zone", origin,
			"from", cs.from, "to", cs.to, "bytes", cs.payload, "journal_bytes", j.maxBytes)
		j.reset(origin, jr)
		return
	}
	if len(jr.sets) > 0 && jr.sets[len(jr.sets)-1].to != cs.from {
		// Cannot happen while record keeps jr.last, but a journal with a
		// gap would answer wrongly: start afresh rather.
		jr.sets, jr.size = nil, 0
		j.rewrite(origin, jr)
	}
	jr.sets = append(jr.sets, cs)
	jr.size += int64(cs.payload)
	if over := j.overBounds(jr); over > 0 {
		jr.sets = jr.sets[over:]
		jr.size = 0
		for _, s := range jr.sets {
			jr.size += int64(s.payload)
		}
		j.rewrite(origin, jr)
		return
	}
	if jr.path != "" {
		if err := appendFrame(jr.path, origin, frame); err != nil {
			j.log.Error("journal: cannot write; kept in memory only until the next rewrite", "zone", origin, "file", jr.path, "err", err)
		}
	}
}

// overBounds returns how many of the oldest differences must go for the
// journal to be within journal-versions and journal-bytes.
//
// Dropping the oldest rewrites the whole file, so when the journal is over
// a bound it is cut a tenth below the bounds: the next tenth of new
// versions are appended, rather than each one rewriting the file.
func (j *Journals) overBounds(jr *journal) int {
	if len(jr.sets) <= j.maxVersions && jr.size <= j.maxBytes {
		return 0
	}
	versions, bytes := j.maxVersions-j.maxVersions/10, j.maxBytes-j.maxBytes/10
	n, size := 0, jr.size
	for n < len(jr.sets) && (len(jr.sets)-n > versions || size > bytes) {
		size -= int64(jr.sets[n].payload)
		n++
	}
	return n
}

func (j *Journals) trim(origin string, jr *journal) {
	if over := j.overBounds(jr); over > 0 {
		jr.sets = jr.sets[over:]
		jr.size = 0
		for _, s := range jr.sets {
			jr.size += int64(s.payload)
		}
		j.rewrite(origin, jr)
	}
}

// reset empties a journal and its file.
func (j *Journals) reset(origin string, jr *journal) {
	jr.sets, jr.size = nil, 0
	j.rewrite(origin, jr)
}

// rewrite replaces the journal's file with its differences in memory,
// atomically: a temporary file beside it, synced, renamed over it.
func (j *Journals) rewrite(origin string, jr *journal) {
	if jr.path == "" {
		return
	}
	var buf bytes.Buffer
	buf.Write(journalHeader(origin))
	for _, cs := range jr.sets {
		buf.Write(cs.frame())
	}
	if err := writeFileAtomic(jr.path, buf.Bytes()); err != nil {
		j.log.Error("journal: cannot rewrite", "zone", origin, "file", jr.path, "err", err)
	}
}

// writeFileAtomic writes data to path through a synced temporary file
// renamed over it, and syncs the directory, so that path holds either the
// old content or the new one whatever happens.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// appendFrame appends one frame to the journal file, creating the file
// with its header when it does not exist, and syncs it.
func appendFrame(path, origin string, frame []byte) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return writeFileAtomic(path, append(journalHeader(origin), frame...))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(frame)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// journalMagic starts the header frame's payload, followed by the origin.
const journalMagic = "ringdns journal 1 "

func makeFrame(payload []byte) []byte {
	f := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(f, uint32(len(payload)))
	binary.BigEndian.PutUint32(f[4:], crc32.Checksum(payload, crcTable))
	return append(f, payload...)
}

func journalHeader(origin string) []byte { return makeFrame([]byte(journalMagic + origin)) }

// frame encodes cs as a journal frame: the serials, the two SOAs (TTL,
// RDATA length, RDATA), and the deleted and added records (4-byte length
// each).
func (cs *changeset) frame() []byte {
	var p []byte
	p = binary.BigEndian.AppendUint32(p, cs.from)
	p = binary.BigEndian.AppendUint32(p, cs.to)
	for _, s := range []soaRecord{cs.fromSOA, cs.toSOA} {
		p = binary.BigEndian.AppendUint32(p, s.ttl)
		p = binary.BigEndian.AppendUint16(p, uint16(len(s.data)))
		p = append(p, s.data...)
	}
	for _, r := range [][]byte{cs.del, cs.add} {
		p = binary.BigEndian.AppendUint32(p, uint32(len(r)))
		p = append(p, r...)
	}
	return makeFrame(p)
}

var errBadFrame = errors.New("malformed journal record")

// parseChangeset decodes a frame's payload.
func parseChangeset(p []byte) (*changeset, error) {
	cs := &changeset{payload: len(p)}
	if len(p) < 8 {
		return nil, errBadFrame
	}
	cs.from, cs.to = binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
	p = p[8:]
	for _, s := range []*soaRecord{&cs.fromSOA, &cs.toSOA} {
		if len(p) < 6 {
			return nil, errBadFrame
		}
		s.ttl = binary.BigEndian.Uint32(p)
		n := int(binary.BigEndian.Uint16(p[4:]))
		if len(p) < 6+n {
			return nil, errBadFrame
		}
		s.data = p[6 : 6+n]
		p = p[6+n:]
	}
	for _, r := range []*[]byte{&cs.del, &cs.add} {
		if len(p) < 4 {
			return nil, errBadFrame
		}
		n := int(binary.BigEndian.Uint32(p))
		if len(p) < 4+n {
			return nil, errBadFrame
		}
		*r = p[4 : 4+n]
		p = p[4+n:]
	}
	if len(p) != 0 {
		return nil, errBadFrame
	}
	// The records must walk cleanly, so that a transfer never stops
	// half-way on a record that does not decode.
	for _, r := range [][]byte{cs.del, cs.add} {
		if err := cs.each(r, func([]byte, uint16, uint32, []byte) error { cs.records++; return nil }); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// readJournal reads the journal file of origin: the differences of every
// good frame, the bytes up to the end of the last good frame, and the
// file's size.
func readJournal(path, origin string) ([]*changeset, int64, int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, 0, err
	}
	var sets []*changeset
	off := 0
	first := true
	for off+8 <= len(data) {
		n := int(binary.BigEndian.Uint32(data[off:]))
		sum := binary.BigEndian.Uint32(data[off+4:])
		if n > len(data)-off-8 {
			break
		}
		p := data[off+8 : off+8+n]
		if crc32.Checksum(p, crcTable) != sum {
			break
		}
		if first {
			if string(p) != journalMagic+origin {
				return nil, 0, int64(len(data)), fmt.Errorf("not the journal of %s", origin)
			}
			first = false
		} else {
			cs, err := parseChangeset(p)
			if err != nil {
				break
			}
			sets = append(sets, cs)
		}
		off += 8 + n
	}
	if first {
		return nil, 0, int64(len(data)), io.ErrUnexpectedEOF
	}
	return sets, int64(off), int64(len(data)), nil
}

// each calls fn for every record of recs, a del or add sequence.
func (cs *changeset) each(recs []byte, fn func(owner []byte, typ uint16, ttl uint32, data []byte) error) error {
	for off := 0; off < len(recs); {
		end := skipWireName(recs, off)
		if end < 0 || end+10 > len(recs) || recs[end-1] != 0 {
			return errBadFrame
		}
		owner := recs[off:end]
		typ := binary.BigEndian.Uint16(recs[end:])
		ttl := binary.BigEndian.Uint32(recs[end+2:])
		n := int(binary.BigEndian.Uint16(recs[end+6:]))
		if end+8+n > len(recs) {
			return errBadFrame
		}
		if err := fn(owner, typ, ttl, recs[end+8:end+8+n]); err != nil {
			return err
		}
		off = end + 8 + n
	}
	return nil
}

// diffVersions computes the difference from old to new with zone.Diff,
// the SOAs apart.
func diffVersions(old, new *zone.Zone) (*changeset, error) {
	cs := &changeset{from: old.Serial(), to: new.Serial()}
	apex := new.Apex()
	err := zone.Diff(old, new, func(del bool, r *zone.Record) error {
		if r.Type == dns.TypeSOA && bytes.Equal(r.Owner, apex) {
			s := soaRecord{owner: append([]byte(nil), r.Owner...), ttl: r.TTL, data: append([]byte(nil), r.Data...)}
			if del {
				cs.fromSOA = s
			} else {
				cs.toSOA = s
			}
			return nil
		}
		dst := &cs.add
		if del {
			dst = &cs.del
		}
		cs.records++
		*dst = append(*dst, r.Owner...)
		*dst = binary.BigEndian.AppendUint16(*dst, r.Type)
		*dst = binary.BigEndian.AppendUint32(*dst, r.TTL)
		*dst = binary.BigEndian.AppendUint16(*dst, uint16(len(r.Data)))
		*dst = append(*dst, r.Data...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cs.fromSOA.data == nil || cs.toSOA.data == nil {
		return nil, fmt.Errorf("the SOA records of serials %d and %d do not differ", old.Serial(), new.Serial())
	}
	return cs, nil
}

// newChangeset makes the changeset of one difference between successive
// versions from the records it deletes and adds, among them the old and
// the new SOA, in any case and order (an IXFR's delta, a reload's
// difference). The records are stored in the canonical form of the
// zone's walk, as diffVersions stores them.
func newChangeset(apex []byte, del, add []dns.RR) (*changeset, error) {
	cs := &changeset{}
	var fromSOA, toSOA bool
	for i, side := range [][]dns.RR{del, add} {
		for _, rr := range side {
			r, err := zone.CanonicalRecord(rr)
			if err != nil {
				return nil, err
			}
			if r.Type == dns.TypeSOA && bytes.Equal(r.Owner, apex) {
				if len(r.Data) < 20 {
					return nil, fmt.Errorf("SOA record %s is malformed", rr)
				}
				s := soaRecord{owner: r.Owner, ttl: r.TTL, data: r.Data}
				serial := binary.BigEndian.Uint32(r.Data[len(r.Data)-20:])
				if i == 0 {
					cs.fromSOA, cs.from, fromSOA = s, serial, true
				} else {
					cs.toSOA, cs.to, toSOA = s, serial, true
				}
				continue
			}
			dst := &cs.del
			if i == 1 {
				dst = &cs.add
			}
			cs.records++
			*dst = append(*dst, r.Owner...)
			*dst = binary.BigEndian.AppendUint16(*dst, r.Type)
			*dst = binary.BigEndian.AppendUint32(*dst, r.TTL)
			*dst = binary.BigEndian.AppendUint16(*dst, uint16(len(r.Data)))
			*dst = append(*dst, r.Data...)
		}
	}
	if !fromSOA || !toSOA {
		return nil, fmt.Errorf("the difference does not delete the old SOA and add the new one")
	}
	return cs, nil
}
