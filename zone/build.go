package zone

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/hugepage"
)

// LoadFile loads and validates the zone with the given origin from a master
// file. $INCLUDE paths are relative to the including file. The error, when
// not nil, is a *LoadError naming the file and line of the first problem.
//
// The file is parsed as it is read, never held whole in memory (a TLD's
// file is over a hundred megabytes, which would stay resident through the
// whole build); it is read again only to find the line of an error or
// warning. A large file is first read once to count its lines and choose
// where to cut it (see splitScanner), then its pieces are parsed
// concurrently, each read from the file on its own.
func LoadFile(origin, path string) (*Zone, error) {
	return loadFile(origin, path, chunkCount(), parallelMin)
}

// loadFile is LoadFile parsing a file of minSize bytes or more in up to
// want chunks.
func loadFile(origin, path string, want int, minSize int64) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &LoadError{Origin: dns.Fqdn(origin), File: path, Msg: err.Error(), Err: err}
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	if size < minSize {
		want = 1
	}
	lines, chunks, err := scanText(f, size, want, dns.Fqdn(origin))
	if err != nil {
		return nil, &LoadError{Origin: dns.Fqdn(origin), File: path, Msg: err.Error(), Err: err}
	}
	open := func(off, end int64) io.Reader {
		return bufio.NewReaderSize(io.NewSectionReader(f, off, end-off), 64<<10)
	}
	return load(nil, lines, int(chunks[len(chunks)-1].end), chunks, open, origin, path)
}

// Parse loads and validates a zone from r; file names it in errors and is
// the base for relative $INCLUDE paths.
func Parse(r io.Reader, origin, file string) (*Zone, error) {
	data, err := readAll(r)
	if err != nil {
		return nil, &LoadError{Origin: dns.Fqdn(origin), File: file, Msg: err.Error(), Err: err}
	}
	want := chunkCount()
	if len(data) < parallelMin {
		want = 1
	}
	return parseChunked(data, origin, file, want)
}

// parseChunked is Parse of the text data in up to want chunks.
func parseChunked(data []byte, origin, file string, want int) (*Zone, error) {
	lines, chunks, err := scanText(bytes.NewReader(data), int64(len(data)), want, dns.Fqdn(origin))
	if err != nil {
		return nil, &LoadError{Origin: dns.Fqdn(origin), File: file, Msg: err.Error(), Err: err}
	}
	open := func(off, end int64) io.Reader { return bytes.NewReader(data[off:end]) }
	return load(data, lines, len(data), chunks, open, origin, file)
}

// rec is one parsed resource record before the table is built.
type rec struct {
	node    int32 // builder node index (before sorting), then final node index
	typ     uint16
	covered uint16 // for RRSIG: the type covered
	ttl     uint32
	rd      uint32 // rdata offset in builder.rdata (uncompressed wire format)
	rdl     uint16
	ord     uint32 // ordinal of the record in the input, for line numbers
}

type builder struct {
	origin string
	file   string
	// data is the zone's text when it was given whole (Parse); a file
	// (LoadFile) is read in chunks instead (see parseChunks), and data is
	// read from the file only if an error or warning needs a line number
	// (see text).
	data  []byte
	lines int // lines of the text, for sizing the builder's arrays
	size  int // bytes of the text
	apex  []byte

	// idx is an open-addressing hash index of names (see buildmem.go):
	// node+1 of b.names by the hash of the name. Before the canonical
	// sort it numbers names in builder order; after it, it is renumbered
	// in place and becomes the zone's own index. Go maps with string keys
	// cost about four times as much memory per name and were a large part
	// of the peak of a big zone's build.
	idx      []slot
	idxN     int
	names    [][]byte // lowercase wire, builder order, until the sort (see nameArena)
	arena    []byte   // the current chunk the names are copied into, until the sort
	recs     []rec
	rdata    []byte
	warnings []pendingWarning

	// first and count give each node's run of recs once they are sorted.
	first, count []int32

	// nameArena is the zone's name arena once the names are sorted: a
	// node's name is read from its Node there (see name), and the name
	// list, 24 bytes a name (46 MB for a million delegations), is
	// dropped, where it lived to the end of the build, at its peak.
	// Apply's partial builders keep their lists.
	nameArena []byte

	// In a zone whose records buildSets releases as it goes (see
	// buildrelease.go): addrs holds every node's addresses, and
	// rangeRecs and rangeRdata each range's records and their rdata.
	addrs      *addrTable
	rangeRecs  [][]rec
	rangeRdata [][]byte

	// Scratch reused from block to block, so that preparing millions of
	// blocks allocates nothing per block (see newWriter).
	wr      *blockWriter
	seen    *nameTable
	trimBuf []Trim
	tgt     [256]byte
	// sigNodes holds, per additional group of the block being prepared,
	// the node of its addresses when they are signed, else -1; sigFix
	// the slots finish reserved for their RRSIG blocks.
	sigNodes []int32
	sigFix   []sigFix
	// kept collects a node's records that get no answer block, for keep.
	kept []rec
	// keptWire and keptSets are reserveTable's estimate of the kept
	// records' wire and runs, which keep reserves.
	keptWire, keptSets int
	// refs collects, for the reverse index Apply uses (updState.refBase),
	// hash(name)<<32 | hash(owner) for every in-zone name an NS, MX or
	// SRV block looked up addresses for, and every name its wildcard
	// lookup tried; refOwner is the hash of the owner of the block being
	// written.
	refs     []uint64
	refOwner uint32

	soaMinimum uint32
	sawSOA     bool // soaMinimum is set: a chunk without an SOA leaves it alone
	// marker is the owner of the record parseChunks puts after a chunk's
	// text: parse stops there and sets sawMarker (see parseChunks).
	marker    string
	sawMarker bool
	// segMarker ends each segment fastparse.go hands to miekg/dns: the
	// segment's parse stands only if it stopped there (sawSegMarker).
	segMarker    string
	sawSegMarker bool
	packBuf      []byte // parseRecords' scratch for one packed record
	// parent is, per node, the node one label up (-1 for the apex); every
	// ancestor of a node is a node (placeNames makes the empty
	// non-terminals).
	parent []int32
	z      *Zone
	out    *arenas // where new blocks go: &z.arenas, or the proofs' while buildDenial runs

	// setsParts, when not 0, is the number of node ranges buildSets
	// builds at once, whatever the zone's size (for tests); setsEst is
	// reserveTable's estimate for each range.
	setsParts int
	setsEst   []tableEstimate

	// runs, in a parse, says that nodes number runs of owners rather
	// than names until sortParsed (see buildnames.go).
	runs nameRuns

	// chain is what buildDenial will do, found before buildSets;
	// proofs the NSEC3 chain's proof blocks, prepared before buildSets
	// (see writeNSEC3Proofs); firstOrds, in a signed zone whose records
	// were split into ranges, each node's first record's ordinal (see
	// firstOrd).
	chain     *chainKind
	proofs    *nsec3Proofs
	firstOrds []uint32
}

// load builds a zone from the chunks of a text, which open reads; lines
// and size describe the text, to size the builder's arrays, and data is
// the text when it is in memory.
func load(data []byte, lines, size int, chunks []chunk, open func(off, end int64) io.Reader, origin, file string) (*Zone, error) {
	// A large zone's load faults in about ten times its text's size of
	// memory over its course, most of it fresh or given back to the
	// system between phases (freeGarbage): in huge pages, where the
	// system leaves them to advice, the faults of a million delegations
	// fall from 289,000 to about 30,000, and its CPU by about a third
	// (internal/hugepage).
	if size > bigText {
		defer hugepage.Begin()()
	}
	b, err := parseText(data, lines, size, chunks, open, origin, file)
	if err != nil {
		return nil, err
	}
	return b.buildParsed()
}

// parseText parses the chunks of a text into a builder's names, records
// and rdata, the first stage of load; reloaddiff.go compares what it
// parsed with a served version before deciding to build.
func parseText(data []byte, lines, size int, chunks []chunk, open func(off, end int64) io.Reader, origin, file string) (*builder, error) {
	origin = dns.Fqdn(origin)
	if _, ok := dns.IsDomainName(origin); !ok {
		return nil, &LoadError{Origin: origin, File: file, Msg: "invalid origin"}
	}
	apex, err := toWire(origin)
	if err != nil {
		return nil, &LoadError{Origin: origin, File: file, Msg: "invalid origin: " + err.Error()}
	}
	// Runs of owners are about half to two thirds of the lines of a zone
	// file; sizing the name list for that spares most of its growth.
	b := &builder{origin: origin, file: file, data: data, lines: lines, size: size, apex: lowerWire(apex)}
	b.initRuns(lines * 2 / 3)
	if err := b.parseChunks(chunks, open); err != nil {
		return nil, err
	}
	b.sortParsed()
	return b, nil
}

// buildParsed builds the table of the records parseText gathered.
func (b *builder) buildParsed() (*Zone, error) {
	// The parser leaves behind several times the memory the parsed zone
	// holds (an object per record and per token). The build is about to
	// allocate the table's large arrays; collecting first lets them reuse
	// that memory rather than add to it, which in a big zone lowers the
	// peak by a few hundred megabytes for one collection of a heap that is
	// nearly all pointer-free arrays (tens of milliseconds). Small zones
	// are left to the collector's own pacing. The pages freed are given
	// back to the system too (see freeGarbage).
	if b.size > bigText {
		freeGarbage()
	}
	return b.build()
}

// freeGarbage collects the garbage of a phase of a big zone's load and
// gives its pages back to the system. A collection alone lets the next
// phase's arrays reuse the memory, but the pages stay resident until the
// runtime's scavenger, paced for a steady heap, returns them, long after
// the load: they added 30-60 MB to the peak of a million delegations'
// load, and 60-100 MB to an NSEC3-signed TLD's. Each call is one
// collection of a heap of mostly pointer-free arrays and an madvise of the
// free pages (tens of milliseconds; three per load).
func freeGarbage() { debug.FreeOSMemory() }

// recordErr returns the error of the record with the given ordinal in the
// text the parse stage is reading.
func (b *builder) recordErr(ord uint32, format string, args ...any) error {
	return &recordError{ord: ord, msg: fmt.Sprintf(format, args...)}
}

// errAt returns a LoadError located at the record with the given ordinal.
func (b *builder) errAt(ord uint32, format string, args ...any) *LoadError {
	e := &LoadError{Origin: b.origin, File: b.file, Msg: fmt.Sprintf(format, args...)}
	if f, l, ok := recordLine(b.text(), b.file, int(ord)); ok {
		e.File, e.Line = f, l
	}
	return e
}

// pendingWarning is a warning whose line is not yet known: lines are found
// for all warnings in one pass over the file at the end of the build,
// since a pass per warning would be quadratic in a large zone.
type pendingWarning struct {
	ord uint32
	msg string
}

func (b *builder) warnAt(ord uint32, format string, args ...any) {
	b.warnings = append(b.warnings, pendingWarning{ord, fmt.Sprintf(format, args...)})
}

// locateWarnings renders the warnings with the file and line of each.
func (b *builder) locateWarnings() []string {
	if len(b.warnings) == 0 {
		return nil
	}
	s := &lineScanner{}
	for _, w := range b.warnings {
		s.targets = append(s.targets, int(w.ord))
	}
	slices.Sort(s.targets)
	s.targets = slices.Compact(s.targets)
	s.at = make(map[int]lineAt, len(s.targets))
	s.scan(b.text(), b.file, 0)
	out := make([]string, len(b.warnings))
	for i, w := range b.warnings {
		e := &LoadError{Origin: b.origin, File: b.file, Msg: w.msg}
		if l, ok := s.at[int(w.ord)]; ok {
			e.File, e.Line = l.file, l.line
		}
		out[i] = e.Error()
	}
	return out
}

// nodeFor returns the builder node of the lowercase wire name w, adding it
// when new. w may be a scratch buffer: a new name is copied into the name
// arena, so that a zone of millions of names costs no allocation per name.
func (b *builder) nodeFor(w []byte) int32 {
	if b.runs.on {
		return b.runFor(w)
	}
	n, _ := b.addName(w)
	return n
}

// parse parses the records of src, a zone file or a chunk of one whose
// parser starts with the given origin, into b's names, records and rdata.
// A record's ordinal counts from 0 in src; an error in a record is a
// *recordError, one of the parser is the parser's (parseChunks locates
// both in the whole text).
func (b *builder) parse(src io.Reader, origin string) error {
	zp := dns.NewZoneParser(src, origin, b.file)
	zp.SetIncludeAllowed(true)
	_, err := b.parseRecords(zp, 0, false)
	return err
}

// parseRecords is parse's loop over the records of zp, whose ordinals
// count from ord; it returns the ordinal after the last. With skipFirst
// the first record (the one that sets the parser's state before a
// segment, see fastparse.go) is read and dropped. It stops at a marker
// record: b.marker's sets sawMarker, b.segMarker's sawSegMarker.
func (b *builder) parseRecords(zp *dns.ZoneParser, ord uint32, skipFirst bool) (uint32, error) {
	if b.packBuf == nil {
		b.packBuf = make([]byte, 65536+512)
	}
	buf := b.packBuf
	var ownerBuf [256]byte
	// Consecutive records usually share their owner: the previous owner's
	// text and node spare the conversion and the node lookup.
	lastName, lastNode := "", int32(-1)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		if skipFirst {
			skipFirst = false
			continue
		}
		if b.marker != "" && h.Name == b.marker && h.Rrtype == markerType {
			b.sawMarker = true
			return ord, nil
		}
		if b.segMarker != "" && h.Name == b.segMarker && h.Rrtype == markerType {
			b.sawSegMarker = true
			return ord, nil
		}
		if h.Class != dns.ClassINET {
			return ord, b.recordErr(ord, "class %s not supported (only IN)", dns.Class(h.Class).String())
		}
		var owner []byte
		if h.Name != lastName || lastNode < 0 {
			on, err := dns.PackDomainName(h.Name, ownerBuf[:], 0, nil, false)
			if err != nil {
				return ord, b.recordErr(ord, "bad owner %q: %v", h.Name, err)
			}
			owner = ownerBuf[:on]
			lowerInto(owner, owner)
			if !isSubdomain(owner, b.apex) {
				return ord, b.recordErr(ord, "%s is outside the zone", h.Name)
			}
			lastName, lastNode = h.Name, b.nodeFor(owner)
		}
		owner = b.names[lastNode]
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return ord, b.recordErr(ord, "cannot encode %s record: %v", dns.Type(h.Rrtype).String(), err)
		}
		// An uncompressed RR is the owner, 10 bytes of type, class, TTL
		// and length, then the rdata.
		rdStart := len(owner) + 10
		if n < rdStart || n-rdStart > 65535 {
			return ord, b.recordErr(ord, "cannot encode %s record", dns.Type(h.Rrtype).String())
		}
		r := rec{node: lastNode, typ: h.Rrtype, ttl: h.Ttl, rd: uint32(len(b.rdata)), rdl: uint16(n - rdStart), ord: ord}
		switch v := rr.(type) {
		case *dns.RRSIG:
			r.covered = v.TypeCovered
		case *dns.SOA:
			b.soaMinimum, b.sawSOA = v.Minttl, true
		}
		if h.Rrtype == dns.TypeOPT || h.Rrtype == dns.TypeTSIG || h.Rrtype == dns.TypeTKEY || h.Rrtype == dns.TypeANY ||
			h.Rrtype == dns.TypeAXFR || h.Rrtype == dns.TypeIXFR {
			return ord, b.recordErr(ord, "%s is not allowed in a zone", dns.Type(h.Rrtype).String())
		}
		// A record may be written with no rdata at all (the form of
		// dynamic update deletions), which the parser accepts; in a zone
		// that is an error for every type whose rdata has fields. Types
		// unknown to the parser, NULL and APL may be empty.
		if n == rdStart && h.Rrtype != dns.TypeNULL && h.Rrtype != dns.TypeAPL {
			if _, known := dns.TypeToRR[h.Rrtype]; known {
				return ord, b.recordErr(ord, "%s record without data", dns.Type(h.Rrtype).String())
			}
		}
		if !rdataNamesOK(h.Rrtype, buf[rdStart:n]) {
			return ord, b.recordErr(ord, "%s record with malformed data", dns.Type(h.Rrtype).String())
		}
		b.rdata = append(b.rdata, buf[rdStart:n]...)
		b.recs = append(b.recs, r)
		ord++
	}
	return ord, zp.Err()
}

// parseError turns an error of the zone parser into a LoadError at the
// file, line and column the parser names, with the parser's error
// underneath. An error that is not a *dns.ParseError (a failed read) is
// kept whole as the message.
func (b *builder) parseError(err error) *LoadError {
	e := &LoadError{Origin: b.origin, File: b.file, Msg: err.Error(), Err: err}
	var pe *dns.ParseError
	if errors.As(err, &pe) {
		if p, ok := splitParseError(pe.Error(), b.file); ok {
			if p.file != "" {
				e.File = p.file
			}
			e.Line, e.Column, e.Msg = p.line, p.column, p.msg
		}
	}
	return e
}

// parsePlace is what a dns.ParseError says: the file (empty when the
// parser was given no name), the message and where it was found.
type parsePlace struct {
	file, msg    string
	line, column int
}

// splitParseError reads a dns.ParseError's parts from its text, which is
// "FILE: dns: MESSAGE at line: LINE:COLUMN" ("FILE: " left out when the
// parser has no file name). miekg/dns v1.1.73 keeps the file, line and
// column in unexported fields and exports only Error and Unwrap, so the
// text is the only way to them. The place is read from the end and the
// file from the start, where the message (which quotes the offending
// token, whatever it holds) cannot reach. file is the name the parser was
// given; an error in an $INCLUDEd file names that file instead.
func splitParseError(s, file string) (parsePlace, bool) {
	const at, sep = " at line: ", "dns: "
	i := strings.LastIndex(s, at)
	if i < 0 {
		return parsePlace{}, false
	}
	ls, cs, ok := strings.Cut(s[i+len(at):], ":")
	line, lerr := strconv.Atoi(ls)
	col, cerr := strconv.Atoi(cs)
	if !ok || lerr != nil || cerr != nil || line < 0 || col < 0 {
		return parsePlace{}, false
	}
	p := parsePlace{line: line, column: col}
	head := s[:i]
	switch {
	case file != "" && strings.HasPrefix(head, file+": "+sep):
		p.file, p.msg = file, head[len(file)+2+len(sep):]
	case file == "" && strings.HasPrefix(head, sep):
		p.msg = head[len(sep):]
	default:
		// An $INCLUDEd file's name, taken to end at the first ": dns: "
		// (a name holding that would be cut short).
		if p.file, p.msg, ok = strings.Cut(head, ": "+sep); !ok {
			return parsePlace{}, false
		}
	}
	return p, true
}

// rdataNamesOK checks the names inside the rdata of the types whose names
// the block writer reads (NS, CNAME, PTR, DNAME, MX, SRV, SOA): each must be
// a well-formed uncompressed name filling exactly its place. The parser
// packs a record given with too little data (an MX written "\# 0", say)
// into short rdata rather than refusing it.
func rdataNamesOK(typ uint16, rd []byte) bool {
	switch typ {
	case dns.TypeNS, dns.TypeCNAME, dns.TypePTR, dns.TypeDNAME:
		return wireNameLen(rd) == len(rd)
	case dns.TypeMX:
		return len(rd) > 2 && wireNameLen(rd[2:]) == len(rd)-2
	case dns.TypeSRV:
		return len(rd) > 6 && wireNameLen(rd[6:]) == len(rd)-6
	case dns.TypeSOA:
		m := wireNameLen(rd)
		if m < 0 {
			return false
		}
		r := wireNameLen(rd[m:])
		return r > 0 && len(rd) == m+r+20
	}
	return true
}

// wireNameLen returns the length of the uncompressed wire name at the start
// of p, or -1 when p does not start with one.
func wireNameLen(p []byte) int {
	for i := 0; i < len(p) && i < 255; i += int(p[i]) + 1 {
		switch {
		case p[i] == 0:
			return i + 1
		case p[i] > 63:
			return -1
		}
	}
	return -1
}

func (b *builder) rdataOf(r *rec) []byte { return b.rdata[r.rd : r.rd+uint32(r.rdl)] }

func typeName(t uint16) string { return dns.Type(t).String() }

// build turns the parsed records into the zone's table, phase by phase.
// Each phase relies on what the ones before it established. The checks
// among them keep the order they have always had, so that of a zone's
// several problems its author is told the same one first.
func (b *builder) build() (*Zone, error) {
	z := &Zone{origin: b.origin, file: b.file, apex: b.apex, apexLabels: countLabels(b.apex)}
	b.z, b.out = z, &z.arenas
	soaOrd, err := b.checkSOA()
	if err != nil {
		return nil, err
	}
	b.placeNodes()
	b.sortRecords()
	b.findRuns()
	b.flagNodes()
	if err := b.checkApexNS(soaOrd); err != nil {
		return nil, err
	}
	if err := b.occlude(); err != nil {
		return nil, err
	}
	if err := b.checkCNAMEs(); err != nil {
		return nil, err
	}
	b.markNSEC3Owners()
	b.reserveTable()
	b.writeNSEC3Proofs()
	if err := b.buildSets(); err != nil {
		return nil, err
	}
	if b.proofs != nil && b.proofs.err != nil {
		// Found before buildSets, but a load has always reported the
		// table's errors first.
		return nil, b.proofs.err
	}
	b.resolveAddSigs()
	if err := b.buildDenial(); err != nil {
		return nil, err
	}
	z.upd.refBase = sortRefs(b.refs)
	b.refs = nil
	z.warnings = b.locateWarnings()
	z.mapped.built(z)
	return z, nil
}

// checkSOA establishes that the zone has one SOA record and that it is at
// the apex (copies of the same record count once: the sort removes them),
// and takes the zone's serial from it. It returns the SOA's ordinal, not a
// pointer to it: the sort reorders b.recs in place, and a later error
// about the apex must still name the SOA's line.
func (b *builder) checkSOA() (uint32, error) {
	apexNode, hasApex := b.apexNode()
	var soa *rec
	for i := range b.recs {
		r := &b.recs[i]
		if r.typ != dns.TypeSOA {
			continue
		}
		if !hasApex || r.node != apexNode {
			return 0, b.errAt(r.ord, "SOA record at %s, not at the apex", wireString(b.names[r.node]))
		}
		if soa != nil && !bytes.Equal(b.rdataOf(soa), b.rdataOf(r)) {
			return 0, b.errAt(r.ord, "more than one SOA record at the apex")
		}
		soa = r
	}
	if soa == nil {
		return 0, &LoadError{Origin: b.origin, File: b.file, Msg: "no SOA record at the apex"}
	}
	sr := b.rdataOf(soa)
	b.z.serial = be32(sr[len(sr)-20:])
	return soa.ord, nil
}

// addEmptyNonTerminals makes every ancestor of every name, down to the
// apex, a name of its own, so that a closest-encloser walk finds every
// level and every node's parent is a node. known is the last parent found
// to exist: names come in file order, where siblings and children mostly
// follow each other, so comparing with it spares most lookups of a big
// zone. The names it adds are visited in turn, so their ancestors are
// added too.
func (b *builder) addEmptyNonTerminals() {
	var known []byte
	for i := 0; i < len(b.names); i++ {
		for w := b.names[i]; len(w) > len(b.apex); {
			w = parentWire(w)
			if bytes.Equal(w, known) {
				break
			}
			if _, added := b.addName(w); !added {
				known = w
				break
			}
		}
	}
}

// sortNames puts the names in canonical order (RFC 4034 section 6.1) and
// makes the zone's nodes in that order (placeNames), renumbering the
// records and the name index to match. From here on a node's number is its
// place in canonical order, so a node's parent and ancestors come before
// it and its descendants right after it.
func (b *builder) sortNames() {
	order := b.canonicalOrder()
	// The sort's keys and entries (about 100 MB for a million
	// delegations) are garbage now, and the collector's pacing would not
	// collect them before the node arrays below are allocated.
	if b.size > bigText {
		freeGarbage()
	}
	newIdx := make([]int32, len(b.names))
	for n, old := range order {
		newIdx[old] = int32(n)
	}
	for i := range b.recs {
		b.recs[i].node = newIdx[b.recs[i].node]
	}
	b.placeNames(order)
	b.renumberIndex(newIdx)
}

// canonicalOrder returns the builder's node numbers in the canonical order
// of their names (see canonicalOrderOf, which sorts a large zone's in
// parallel).
func (b *builder) canonicalOrder() []int32 { return canonicalOrderOf(b.names) }

// sortRecords sorts the records by node, type (RRSIGs by covered type),
// then rdata, and removes exact duplicates (the first of them kept), so
// that each node's records are one run and each RRset a run within it.
func (b *builder) sortRecords() {
	b.sortRecs(len(b.z.nodes))
	out := b.recs[:0]
	for i := range b.recs {
		r := b.recs[i]
		if len(out) > 0 {
			p := &out[len(out)-1]
			if p.node == r.node && p.typ == r.typ && p.covered == r.covered && bytes.Equal(b.rdataOf(p), b.rdataOf(&r)) {
				continue
			}
		}
		out = append(out, r)
	}
	b.recs = out
	b.z.records = len(b.recs)
}

// findRuns records where each node's run of sorted records starts and how
// long it is (b.first, b.count; first is -1 for a node without records, an
// empty non-terminal), which recsOf and recordOf read.
func (b *builder) findRuns() {
	first := make([]int32, len(b.z.nodes))
	count := make([]int32, len(b.z.nodes))
	for i := range first {
		first[i] = -1
	}
	for i := range b.recs {
		r := &b.recs[i]
		if first[r.node] < 0 {
			first[r.node] = int32(i)
		}
		count[r.node]++
	}
	b.first, b.count = first, count
}

// recordOf returns the index in b.recs of the first record of type t at
// node n, or -1 when the node has none.
func (b *builder) recordOf(n int32, t uint16) int32 {
	if b.first[n] < 0 {
		return -1
	}
	for i := b.first[n]; i < b.first[n]+b.count[n]; i++ {
		if b.recs[i].typ == t {
			return i
		}
	}
	return -1
}

// flagNodes sets the flags that a node's own records decide: the apex, an
// empty node (no records), a delegation (NS anywhere but the apex), a
// CNAME or a DNAME. The flags its ancestors decide are occlude's.
func (b *builder) flagNodes() {
	z := b.z
	z.nodes[z.apexNode].Flags |= FlagApex
	for n := range z.nodes {
		nd := &z.nodes[n]
		if b.first[n] < 0 {
			nd.Flags |= FlagEmpty
		}
		if b.recordOf(int32(n), dns.TypeNS) >= 0 && nd.Flags&FlagApex == 0 {
			nd.Flags |= FlagDelegation
		}
		if b.recordOf(int32(n), dns.TypeCNAME) >= 0 {
			nd.Flags |= FlagCNAME
		}
		if b.recordOf(int32(n), dns.TypeDNAME) >= 0 {
			nd.Flags |= FlagDNAME
		}
	}
}

// checkApexNS establishes that the apex has NS records; the error names
// the line of the SOA (the record with ordinal soaOrd), where the apex
// begins.
func (b *builder) checkApexNS(soaOrd uint32) error {
	if b.recordOf(int32(b.z.apexNode), dns.TypeNS) < 0 {
		return b.errAt(soaOrd, "no NS records at the apex")
	}
	return nil
}

// occlude establishes what a node's ancestors decide: b.parent (each
// node's parent, -1 for the apex), FlagWildcard on the parent of a
// wildcard, and FlagOccluded on every node below a zone cut or a DNAME.
// Records below a DNAME are an error; empty non-terminals there are only
// occluded. Parents precede children in canonical order, so one pass in
// node order suffices. dnameAbove holds, per node, the nearest ancestor
// with a DNAME (or -1), so that data several levels below it, under empty
// non-terminals, is found.
func (b *builder) occlude() error {
	z := b.z
	dnameAbove := make([]int32, len(z.nodes))
	var parents parentFinder
	b.parent = make([]int32, len(z.nodes))
	for n := range z.nodes {
		dnameAbove[n] = -1
		w := b.name(int32(n))
		p := parents.visit(b, int32(n))
		b.parent[n] = p
		if len(w) == len(b.apex) {
			continue
		}
		pn := &z.nodes[p]
		if w[0] == 1 && w[1] == '*' {
			pn.Flags |= FlagWildcard
		}
		if pn.Flags&(FlagDelegation|FlagOccluded) != 0 {
			z.nodes[n].Flags |= FlagOccluded
		}
		if pn.Flags&FlagDNAME != 0 {
			dnameAbove[n] = p
		} else {
			dnameAbove[n] = dnameAbove[p]
		}
		if d := dnameAbove[n]; d >= 0 {
			if b.first[n] >= 0 {
				return b.errAt(b.recs[b.first[n]].ord, "%s is below the DNAME at %s", wireString(w), wireString(b.name(d)))
			}
			z.nodes[n].Flags |= FlagOccluded
		}
	}
	return nil
}

// checkCNAMEs establishes that a node has at most one CNAME and at most
// one DNAME record, and that a CNAME has no other data beside it but the
// DNSSEC records (RRSIG, NSEC, NSEC3) that may share its name.
func (b *builder) checkCNAMEs() error {
	for n := range b.z.nodes {
		recs := b.recsOf(int32(n))
		var cname, dname int
		for i := range recs {
			switch recs[i].typ {
			case dns.TypeCNAME:
				cname++
				if cname > 1 {
					return b.errAt(recs[i].ord, "more than one CNAME record at %s", wireString(b.name(int32(n))))
				}
			case dns.TypeDNAME:
				dname++
				if dname > 1 {
					return b.errAt(recs[i].ord, "more than one DNAME record at %s", wireString(b.name(int32(n))))
				}
			}
		}
		if cname == 0 {
			continue
		}
		for i := range recs {
			switch recs[i].typ {
			case dns.TypeCNAME, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			default:
				c := b.recordOf(int32(n), dns.TypeCNAME)
				return b.errAt(b.recs[c].ord, "CNAME at %s beside other data (%s)", wireString(b.name(int32(n))), typeName(recs[i].typ))
			}
		}
	}
	return nil
}

// appendCanonicalKey appends a key for the lowercase wire name w such that
// bytes.Compare on keys agrees with CompareCanonical on names: the labels
// from the rightmost, each ended by the two bytes 0x00 0x00, with a 0x00
// inside a label written as 0x00 0x01. A label that is a prefix of another
// then sorts first, as RFC 4034 section 6.1 requires, because its end
// marker is below any byte the longer label can continue with.
func appendCanonicalKey(dst, w []byte) []byte {
	var offs [MaxLabels]int
	n := 0
	for i := 0; w[i] != 0; i += int(w[i]) + 1 {
		offs[n] = i
		n++
	}
	for k := n - 1; k >= 0; k-- {
		o := offs[k]
		l := w[o+1 : o+1+int(w[o])]
		if bytes.IndexByte(l, 0) < 0 {
			// The label whole: a byte at a time was most of the time
			// the keys of a large zone's sort took.
			dst = append(append(dst, l...), 0, 0)
			continue
		}
		for _, c := range l {
			if c == 0 {
				dst = append(dst, 0, 1)
			} else {
				dst = append(dst, c)
			}
		}
		dst = append(dst, 0, 0)
	}
	return dst
}

func be32(p []byte) uint32 {
	return uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3])
}

// hasBlock reports whether an RRset of type t at node nd gets a block of
// its own: every RRset but those occluded by a zone cut or a DNAME, except
// the DS at a cut, which the parent side serves.
func hasBlock(nd *Node, t uint16) bool {
	return nd.Flags&FlagOccluded == 0 || t == dns.TypeDS && nd.Flags&FlagDelegation != 0
}

// buildSets groups each node's records into RRsets and prepares their
// blocks, over the ranges of nodes reserveTable estimated at once in a
// large zone (see buildSetsParts).
func (b *builder) buildSets() error {
	return b.buildSetsParts()
}

// buildSetsRange is buildSets over the nodes lo to hi (not included),
// appending to b.z's sets, names and arenas.
func (b *builder) buildSetsRange(lo, hi int) error {
	z := b.z
	for n := lo; n < hi; n++ {
		nd := &z.nodes[n]
		nd.Set0 = uint32(len(z.sets))
		if nd.Flags&FlagNSEC3Owner != 0 {
			// Its records are in its NSEC3 proof block alone (see
			// markNSEC3Owners), and may be gone; only the warning
			// about its RRset is given here, as for any other.
			if w, ok := b.proofs.ownerTTL[int32(n)]; ok {
				b.warnings = append(b.warnings, w)
			}
			continue
		}
		recs := b.recsOf(int32(n))
		if recs == nil {
			continue
		}
		// RRSIGs are attached to the RRset they cover. Records are sorted
		// by type, then covered type, so a node's RRSIGs are one run and
		// those covering one type a run within it; no map is needed (one
		// per node was the largest cost of building a big zone's sets).
		var sigs []rec
		for i := range recs {
			if recs[i].typ == dns.TypeRRSIG {
				j := i
				for j < len(recs) && recs[j].typ == dns.TypeRRSIG {
					j++
				}
				sigs = recs[i:j]
				break
			}
		}
		for i := 0; i < len(recs); {
			j := i
			for j < len(recs) && recs[j].typ == recs[i].typ {
				j++
			}
			if recs[i].typ == dns.TypeRRSIG {
				i = j
				continue
			}
			set := recs[i:j]
			if len(set) > 65535 {
				return b.errAt(set[0].ord, "RRset too large")
			}
			rs := RRset{Type: set[0].typ, Count: uint16(len(set)), TTL: set[0].ttl, Block: None, Sig: None, Target: None}
			b.checkTTLs(int32(n), set)
			if rs.Type == dns.TypeCNAME || rs.Type == dns.TypeDNAME {
				rs.Target = uint32(len(z.names))
				z.names = append(z.names, b.rdataOf(&set[0])...)
				t := z.names[rs.Target:] // exactly the target name
				lowerInto(t, t)
			}
			if hasBlock(nd, rs.Type) {
				var err error
				if nd.Flags&FlagDelegation != 0 && rs.Type == dns.TypeNS {
					rs.Block, err = b.referralBlock(int32(n), set)
				} else {
					rs.Block, err = b.rrsetBlock(int32(n), set)
				}
				if err != nil {
					return b.locate(err, set[0].ord)
				}
				if s := coveringRun(sigs, rs.Type); len(s) > 0 {
					if rs.Sig, err = b.plainBlock(b.name(int32(n)), s, 0); err != nil {
						return b.locate(err, s[0].ord)
					}
				}
			} else {
				// Never answered, but part of the zone (see kept).
				b.kept = append(b.kept, set...)
				b.kept = append(b.kept, coveringRun(sigs, rs.Type)...)
			}
			z.sets = append(z.sets, rs)
			i = j
		}
		for i := 0; i < len(sigs); {
			t := sigs[i].covered
			run := coveringRun(sigs[i:], t)
			if t == dns.TypeRRSIG || !slices.ContainsFunc(recs, func(r rec) bool { return r.typ == t }) {
				b.warnAt(run[0].ord, "RRSIG covering %s at %s, which has no %s RRset", typeName(t), wireString(b.name(int32(n))), typeName(t))
				b.kept = append(b.kept, run...)
			}
			i += len(run)
		}
		nd.NSets = uint16(uint32(len(z.sets)) - nd.Set0)
		if len(b.kept) > 0 {
			if err := b.keep(int32(n), b.kept); err != nil {
				return err
			}
			b.kept = b.kept[:0]
		}
		if nd.Flags&FlagApex != 0 {
			if err := b.negSOABlocks(recs); err != nil {
				return b.locate(err, recs[0].ord)
			}
		}
	}
	return nil
}

// checkTTLs warns when the records of the RRset set of node n have TTLs
// that differ: the first record's is served.
func (b *builder) checkTTLs(n int32, set []rec) {
	if w, ok := ttlWarning(b.name(n), set); ok {
		b.warnings = append(b.warnings, w)
	}
}

// ttlWarning is checkTTLs's warning about the RRset set of owner w, if
// it has one.
func ttlWarning(w []byte, set []rec) (pendingWarning, bool) {
	for _, r := range set[1:] {
		if r.ttl != set[0].ttl {
			return pendingWarning{r.ord, fmt.Sprintf("TTL %d of %s %s differs from the RRset's TTL %d; %d is served", r.ttl, wireString(w), typeName(set[0].typ), set[0].ttl, set[0].ttl)}, true
		}
	}
	return pendingWarning{}, false
}

// locate gives a block-building error, which knows neither the zone nor
// the file, the zone's origin and the file and line of the record with
// ordinal ord, so that it reaches the zone's author like any other error.
func (b *builder) locate(err error, ord uint32) error {
	var le *LoadError
	if errors.As(err, &le) && le.Origin == "" && le.File == "" {
		return b.errAt(ord, "%s", le.Msg)
	}
	return err
}

// coveringRun returns the RRSIGs of sigs (a node's RRSIG run, sorted by
// covered type) that cover type t.
func coveringRun(sigs []rec, t uint16) []rec {
	i := 0
	for i < len(sigs) && sigs[i].covered != t {
		i++
	}
	j := i
	for j < len(sigs) && sigs[j].covered == t {
		j++
	}
	return sigs[i:j]
}

// negSOABlocks prepares the SOA of negative answers with its TTL lowered to
// the SOA MINIMUM when that is smaller (RFC 2308 section 3).
func (b *builder) negSOABlocks(recs []rec) error {
	z := b.z
	soa, sig := ofType(recs, dns.TypeSOA)
	ttl := min(soa[0].ttl, b.soaMinimum)
	var err error
	if z.negSOA, err = b.plainBlock(b.apex, soa, ttl); err != nil {
		return err
	}
	z.negSOASig = None
	if len(sig) > 0 {
		z.negSOASig, err = b.plainBlock(b.apex, sig, ttl)
	}
	return err
}

// recordLine finds the file and line where the record with the given
// ordinal starts, by scanning the master file text the way the parser
// reads it. It runs only when an error or warning must name a line.
func recordLine(data []byte, file string, ord int) (string, int, bool) {
	s := &lineScanner{targets: []int{ord}, at: map[int]lineAt{}}
	s.scan(data, file, 0)
	l, ok := s.at[ord]
	return l.file, l.line, ok
}

// lineScanner finds where the records with the ordinals in targets
// (ascending) start; found is set once all are located.
type lineScanner struct {
	targets []int
	at      map[int]lineAt
	seen    int
	found   bool
}

type lineAt struct {
	file string
	line int
}

// scan walks logical records: a record starts on a line that is not blank
// or a comment once parentheses are balanced; directives do not count,
// $INCLUDE recurses into the included file.
func (s *lineScanner) scan(data []byte, file string, depth int) {
	if depth > 7 || s.found {
		return
	}
	line := 1
	paren := 0
	i := 0
	for i < len(data) && !s.found {
		// Start of a physical line.
		start := i
		startLine := line
		var toks []string
		var tok strings.Builder
		inQuote := false
		flush := func() {
			if tok.Len() > 0 {
				toks = append(toks, tok.String())
				tok.Reset()
			}
		}
		wasInParen := paren > 0
		for i < len(data) {
			c := data[i]
			if c == '\n' {
				line++
				i++
				if paren == 0 && !inQuote {
					break
				}
				flush()
				continue
			}
			switch {
			case c == '\\' && i+1 < len(data):
				tok.WriteByte(c)
				tok.WriteByte(data[i+1])
				i += 2
				continue
			case inQuote:
				if c == '"' {
					inQuote = false
				}
				tok.WriteByte(c)
			case c == '"':
				inQuote = true
				tok.WriteByte(c)
			case c == ';':
				for i < len(data) && data[i] != '\n' {
					i++
				}
				continue
			case c == '(':
				paren++
				flush()
			case c == ')':
				paren--
				flush()
			case c == ' ' || c == '\t' || c == '\r':
				flush()
			default:
				tok.WriteByte(c)
			}
			i++
		}
		flush()
		_ = start
		if wasInParen || len(toks) == 0 {
			continue
		}
		switch strings.ToUpper(toks[0]) {
		case "$ORIGIN", "$TTL":
			continue
		case "$GENERATE":
			// One line stands for many records: give up locating lines.
			s.found = false
			s.seen = -1 << 30
			return
		case "$INCLUDE":
			if len(toks) > 1 {
				p := toks[1]
				if !strings.HasPrefix(p, "/") {
					if k := strings.LastIndexByte(file, '/'); k >= 0 {
						p = file[:k+1] + p
					}
				}
				if sub, err := os.ReadFile(p); err == nil {
					s.scan(sub, p, depth+1)
				}
			}
			continue
		}
		if k := len(s.at); k < len(s.targets) && s.seen == s.targets[k] {
			s.at[s.seen] = lineAt{file, startLine}
			if len(s.at) == len(s.targets) {
				s.found = true
				return
			}
		}
		s.seen++
	}
}
