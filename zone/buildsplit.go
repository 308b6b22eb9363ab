package zone

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// parallelMin is the size from which a zone file is parsed in parallel, in
// as many chunks as GOMAXPROCS. The parser is most of the time a large
// zone takes to load; below a megabyte the goroutines and the merge cost
// more than they save. Tests split small texts through parseChunked and
// loadFile.
const parallelMin = 1 << 20

// chunk is a byte range of the top-level zone file that starts a record
// and is parsed by a zone parser of its own, with the parser state the
// text before it leaves: the origin ($ORIGIN) and the default TTL ($TTL).
type chunk struct {
	off, end int64
	line     int    // the line off is on, from 1
	lines    int    // newlines in the range, to size the chunk's arrays
	origin   string // the origin at off
	ttl      string // the last $TTL's value before off; "" when none came
}

// splitScanner reads a zone file once, counting its lines, and chooses
// where to cut it into chunks. A cut must leave each chunk's parser in the
// state the whole file's parser would be in at that point, so it is made
// only at the start of a line that begins a record with its own owner
// (not a line continuing a record in parentheses, a quoted string, a
// comment or a directive, and not one starting with a blank, whose owner
// is the previous record's). The miekg/dns parser carries just three more
// things from one record to the next: the origin and the $TTL, which the
// chunk's parser is given, and, when no $TTL came before, the TTL of the
// previous record, which is why a cut before any $TTL needs a record that
// writes its TTL. $INCLUDEd files change none of the including file's
// state and are not read here. When the scanner cannot be sure of its
// state (a quoted string or an escape across a line end, a directive it
// cannot read, more closing than opening parentheses), it makes no more
// cuts: the text after the last cut is one chunk, parsed as always.
type splitScanner struct {
	want   int   // chunks wanted
	size   int64 // bytes of the text, to place the cuts
	chunks []chunk
	next   int64 // the first offset where the next cut may go

	off     int64
	lines   int
	origin  string
	ttl     string
	paren   int
	inQuote bool
	escape  bool
	comment bool
	midLine bool // the last piece read ended inside a line
	unsure  bool
}

// scanText reads r (size bytes) to its end and returns its line count and
// the chunks, up to want, it should be parsed in. origin is the zone's
// origin, where the text starts.
func scanText(r io.Reader, size int64, want int, origin string) (int, []chunk, error) {
	s := &splitScanner{want: want, size: size, origin: origin, chunks: []chunk{{line: 1, origin: origin}}}
	s.next = size / int64(want)
	if err := s.read(r, true); err != nil {
		return 0, nil, err
	}
	for i := range s.chunks {
		c := &s.chunks[i]
		if i+1 < len(s.chunks) {
			c.end = s.chunks[i+1].off
			c.lines = s.chunks[i+1].line - c.line
		} else {
			c.end = s.off
			c.lines = s.lines + 1 - c.line
		}
	}
	return s.lines, s.chunks, nil
}

// piece takes the next piece of the text: a whole line with its newline,
// or part of a line too long for the reader's buffer.
func (s *splitScanner) piece(p []byte) {
	at := s.off
	start := !s.midLine
	s.off += int64(len(p))
	s.midLine = p[len(p)-1] != '\n'
	clean := s.paren == 0 && !s.inQuote && !s.escape && !s.comment
	if start && clean && !s.unsure {
		if p[0] == '$' {
			s.directive(p)
		} else if len(s.chunks) < s.want && at >= s.next && !s.midLine && s.canCut(p) {
			s.chunks = append(s.chunks, chunk{off: at, line: s.lines + 1, origin: s.origin, ttl: s.ttl})
			s.next = s.size * int64(len(s.chunks)) / int64(s.want)
		}
	}
	if !s.escape && !s.inQuote && !s.comment && !hasSplitSpecial(p) {
		s.lines += bytes.Count(p, []byte{'\n'})
		return
	}
	for _, c := range p {
		if c == '\n' {
			s.lines++
		}
		switch {
		case s.comment:
			s.comment = c != '\n'
		case s.escape:
			s.escape = false
			if c == '\n' {
				s.unsure = true
			}
		case c == '\\':
			s.escape = true
		case s.inQuote:
			if c == '"' {
				s.inQuote = false
			} else if c == '\n' {
				s.unsure = true
			}
		case c == '"':
			s.inQuote = true
		case c == ';':
			s.comment = true
		case c == '(':
			s.paren++
		case c == ')':
			s.paren--
			if s.paren < 0 {
				s.unsure = true
			}
		}
	}
}

// splitSpecial marks the bytes that change the scanner's state.
var splitSpecial = [256]uint8{'"': 1, '(': 1, ')': 1, ';': 1, '\\': 1}

// hasSplitSpecial reports whether p holds a byte of splitSpecial. It
// looks at eight bytes at a time, without a branch per byte: it reads
// every byte of a large zone file once, before the parallel parse can
// start, and bytes.IndexAny was most of that pass.
func hasSplitSpecial(p []byte) bool {
	for len(p) >= 8 {
		if splitSpecial[p[0]]|splitSpecial[p[1]]|splitSpecial[p[2]]|splitSpecial[p[3]]|
			splitSpecial[p[4]]|splitSpecial[p[5]]|splitSpecial[p[6]]|splitSpecial[p[7]] != 0 {
			return true
		}
		p = p[8:]
	}
	for _, c := range p {
		if splitSpecial[c] != 0 {
			return true
		}
	}
	return false
}

// directive follows the $ORIGIN and $TTL directives; $INCLUDE and
// $GENERATE change no state of the including file.
func (s *splitScanner) directive(p []byte) {
	toks, ok := leadingTokens(p, 2)
	if s.midLine || !ok || len(toks) == 0 {
		s.unsure = true
		return
	}
	switch strings.ToUpper(toks[0]) {
	case "$ORIGIN":
		if len(toks) < 2 {
			s.unsure = true
			return
		}
		s.origin = absoluteName(toks[1], s.origin)
	case "$TTL":
		if len(toks) < 2 {
			s.unsure = true
			return
		}
		s.ttl = toks[1]
	}
}

// canCut reports whether a chunk may start with the line p: a record with
// its own owner and, unless a $TTL came before, its own TTL.
func (s *splitScanner) canCut(p []byte) bool {
	switch p[0] {
	case ' ', '\t', '\r', '\n', ';', '(', ')', '"', '\\':
		return false
	}
	if s.ttl != "" {
		return true
	}
	toks, _ := leadingTokens(p, 3)
	if len(toks) < 2 {
		return false
	}
	isTTL := func(t string) bool { return t[0] >= '0' && t[0] <= '9' }
	if isTTL(toks[1]) {
		return true
	}
	return len(toks) > 2 && isClass(toks[1]) && isTTL(toks[2])
}

func isClass(t string) bool {
	t = strings.ToUpper(t)
	_, ok := dns.StringToClass[t]
	return ok || strings.HasPrefix(t, "CLASS")
}

// leadingTokens returns up to n blank-separated tokens from the start of
// the line p, stopping at its end or a comment; ok is false when the
// tokens reach a parenthesis, a quote or an escape, which the scanner
// does not read.
func leadingTokens(p []byte, n int) (toks []string, ok bool) {
	i := 0
	for len(toks) < n {
		for i < len(p) && (p[i] == ' ' || p[i] == '\t') {
			i++
		}
		j := i
		for j < len(p) && bytes.IndexByte([]byte(" \t\r\n;()\"\\"), p[j]) < 0 {
			j++
		}
		if j == i {
			if i < len(p) && bytes.IndexByte([]byte("()\"\\"), p[i]) >= 0 {
				return toks, false
			}
			return toks, true
		}
		toks = append(toks, string(p[i:j]))
		i = j
	}
	return toks, true
}

// absoluteName is miekg/dns's rule for a name in a directive: "@" is the
// origin, a name ending in a dot is absolute, any other is relative to the
// origin.
func absoluteName(name, origin string) string {
	switch {
	case name == "@":
		return origin
	case dns.IsFqdn(name):
		return name
	case origin == ".":
		return name + "."
	}
	return name + "." + origin
}

// recordError is an error found in a record by the parse stage, located by
// the record's ordinal within its chunk; parseChunks makes it a LoadError
// once the records of the chunks before are counted.
type recordError struct {
	ord uint32
	msg string
}

func (e *recordError) Error() string { return e.msg }

// chunkText is what a chunk's parser reads: a $TTL line when a $TTL came
// before the chunk, then the chunk's bytes.
type chunkText struct {
	r          io.Reader
	origin     string
	lineOffset int // added to a line the parser reports, in the top-level file
}

// parseChunks parses the chunks of the text concurrently, the first into b
// and each other into a builder of its own, then merges them into b in file
// order. The merge adds names and records in the order one parser reading
// the whole file would have, so the builder ends as it would have.
// open returns a reader of the byte range [off, end) of the text.
func (b *builder) parseChunks(chunks []chunk, open func(off, end int64) io.Reader) error {
	texts := make([]chunkText, len(chunks))
	for i, c := range chunks {
		t := chunkText{r: open(c.off, c.end), origin: c.origin, lineOffset: c.line - 1}
		if c.ttl != "" {
			t.r = io.MultiReader(strings.NewReader("$TTL "+c.ttl+"\n"), t.r)
			t.lineOffset--
		}
		texts[i] = t
	}
	marker := chunkMarker()
	if len(chunks) == 1 {
		b.recs = make([]rec, 0, b.lines+1)
		b.rdata = make([]byte, 0, b.size/2)
		if b.parseFast(texts[0].r, texts[0].origin) != nil {
			return b.parseSerial(chunks, open)
		}
		return nil
	}
	// Each chunk parses into a region of its own of one array of records
	// and one of rdata, both reserved for the whole text (pages never
	// written are never resident): a chunk's records in as many places as
	// it has lines (a record takes at least one, $GENERATE aside), its
	// rdata in 5/8 of its bytes (wire rdata is about half the text of a
	// delegation zone, base64 and base32 5/8 or less of it). Gathering
	// the regions then moves records and rdata down within the arrays; a
	// merge by copying into arrays of their own, as in the first version,
	// held every chunk's records and rdata twice at its peak, and cost a
	// large zone's load about 100 MB more than the serial parse. A chunk
	// that outgrows its region gets arrays of its own, and gatherChunks
	// copies.
	recs := make([]rec, 0, b.lines+1)
	rdata := make([]byte, 0, rdataRegion(int64(b.size)))
	subs := make([]*builder, len(chunks))
	errs := make([]error, len(chunks))
	recRegions := make([][]rec, len(chunks))
	rdataRegions := make([][]byte, len(chunks))
	var wg sync.WaitGroup
	for i, c := range chunks {
		sb := b
		if i > 0 {
			sb = &builder{origin: b.origin, file: b.file, apex: b.apex}
			sb.initRuns(c.lines * 2 / 3)
		}
		subs[i] = sb
		if i+1 < len(chunks) {
			sb.marker = marker
			texts[i].r = io.MultiReader(texts[i].r, strings.NewReader(marker+" 0 IN TYPE65534 \\# 0\n"))
		}
		r0 := c.line - 1
		recRegions[i] = recs[r0:r0:min(r0+c.lines, cap(recs))]
		d0, d1 := rdataRegion(c.off), rdataRegion(c.end)
		rdataRegions[i] = rdata[d0:d0:d1]
		sb.recs, sb.rdata = recRegions[i], rdataRegions[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = sb.parseFast(texts[i].r, texts[i].origin)
		}()
	}
	wg.Wait()
	// A chunk's parse stands only if it ended at its marker: the last
	// record of its text then ended where the whole text's parser would
	// have ended it, before a further line. Without the marker the parser
	// would accept at the end of a chunk a record short of fields (the
	// form of dynamic update deletions), which within the text it reads on
	// into the next line and refuses or reads otherwise. Any error, or a
	// marker not reached, leaves the text to one parser of the whole, so
	// that the zone and the error are exactly those of a serial parse.
	for i, sb := range subs {
		if errs[i] != nil || i+1 < len(subs) && !sb.sawMarker {
			return b.parseSerial(chunks, open)
		}
	}
	inPlace := true
	for i, sb := range subs {
		inPlace = inPlace && sameStart(sb.recs, recRegions[i]) && sameStart(sb.rdata, rdataRegions[i])
	}
	b.gatherChunks(subs, recs, rdata, inPlace)
	return nil
}

// parseSerial parses the whole text (the chunks, which open reads) into b
// afresh, with miekg/dns alone: the reference for the zone and for its
// errors, used when a parallel parse or the fast path (see fastparse.go)
// fails or cannot vouch for its result.
func (b *builder) parseSerial(chunks []chunk, open func(off, end int64) io.Reader) error {
	*b = builder{origin: b.origin, file: b.file, data: b.data, lines: b.lines, size: b.size, apex: b.apex}
	b.initIndex(b.lines / 2)
	b.recs = make([]rec, 0, b.lines+1)
	b.rdata = make([]byte, 0, b.size/2)
	r := open(0, chunks[len(chunks)-1].end)
	return b.chunkError(b.parse(r, chunks[0].origin), 0, 0)
}

// markerType is the type of the marker record that ends each chunk's
// text but the last (TYPE65534, private use).
const markerType = 65534

// chunkMarker returns an absolute owner name for the marker records of one
// parallel parse: a label with 128 random bits, which no zone file holds
// (and outside any zone but the root's).
func chunkMarker() string {
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err) // crypto/rand does not fail on the systems Go supports
	}
	return "ringdns-chunk-end-" + hex.EncodeToString(r[:]) + "."
}

// rdataRegion is where the rdata region of a chunk starting at byte off of
// the text starts (see parseChunks).
func rdataRegion(off int64) int64 { return off / 8 * 5 }

// gatherChunks makes the chunks' names, records and rdata b's, in file
// order: each chunk's names are added to b's index (the first chunk's
// are b's already), its records renumbered to b's nodes and its rdata
// offsets and ordinals moved past the chunks' before. recs and rdata are
// the arrays the chunks' regions were cut from; when inPlace (no chunk
// outgrew its regions) the chunks' records and rdata are moved down in
// them, to follow each other, else copied into arrays of their own.
func (b *builder) gatherChunks(subs []*builder, recs []rec, rdata []byte, inPlace bool) {
	if !inPlace {
		nrecs, nrdata := 0, 0
		for _, sb := range subs {
			nrecs += len(sb.recs)
			nrdata += len(sb.rdata)
		}
		recs = make([]rec, 0, nrecs)
		rdata = make([]byte, 0, nrdata)
	}
	outRecs, outRdata := recs[:0], rdata[:0]
	var ordBase uint32
	for i, sb := range subs {
		var node []int32
		if i > 0 {
			node = b.chunkNodes(sb)
		}
		rdBase := uint32(len(outRdata))
		for k := range sb.recs {
			r := &sb.recs[k]
			if node != nil {
				r.node = node[r.node]
			}
			r.rd += rdBase
			r.ord += ordBase
		}
		// Both append within the arrays' capacity when in place, where
		// the destination never lies past the source: copy moves the
		// overlapping bytes correctly.
		outRecs = append(outRecs, sb.recs...)
		outRdata = append(outRdata, sb.rdata...)
		ordBase += uint32(len(sb.recs))
		if sb.sawSOA {
			b.soaMinimum, b.sawSOA = sb.soaMinimum, true
		}
		if i > 0 {
			subs[i] = nil
		}
	}
	b.recs, b.rdata = outRecs, outRdata
}

// sameStart reports whether s still starts where region, the slice it was
// made as, does: append did not move it to an array of its own.
func sameStart[T any](s, region []T) bool {
	if cap(region) == 0 || cap(s) == 0 {
		return cap(s) == cap(region)
	}
	return &s[:1][0] == &region[:1][0]
}

// chunkError makes a chunk's parse error a LoadError located in the whole
// text: a record's ordinal counts the records of the chunks before
// (ordBase), and a line the parser names in the top-level file counts the
// lines before the chunk (lineOffset; an error in an $INCLUDEd file is
// left as the parser located it).
func (b *builder) chunkError(err error, lineOffset int, ordBase uint32) error {
	if err == nil {
		return nil
	}
	var re *recordError
	if errors.As(err, &re) {
		return b.errAt(ordBase+re.ord, "%s", re.msg)
	}
	le := b.parseError(err)
	if le.Line > 0 && le.File == b.file {
		le.Line += lineOffset
	}
	return le
}

// chunkCount is how many chunks a large text is parsed in: one per core
// the process may use.
func chunkCount() int { return runtime.GOMAXPROCS(0) }
