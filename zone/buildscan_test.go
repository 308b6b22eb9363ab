package zone

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// scanLines is scanText as it read before read: a line at a time from a
// 64 KiB bufio.Reader, the reference read's groups must agree with.
func scanLines(r io.Reader, size int64, want int, origin string) (int, []chunk) {
	s := &splitScanner{want: want, size: size, origin: origin, chunks: []chunk{{line: 1, origin: origin}}}
	s.next = size / int64(want)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		p, err := br.ReadSlice('\n')
		if len(p) > 0 {
			s.piece(p)
		}
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
	}
	return s.lines, s.chunks
}

// TestScanGroups requires the scan that counts groups of quiet lines
// whole (read) to give the line count and the chunks the scan of one
// line at a time gives, for texts with every kind of line the scanner
// follows (directives, parentheses, quotes, comments, escapes), lines
// longer than a piece and than read's buffer, and no final newline, cut
// in 1 to 9 chunks.
func TestScanGroups(t *testing.T) {
	dir := t.TempDir()
	inc := writeTricky(t, dir)
	var deleg bytes.Buffer
	dw := bufio.NewWriter(&deleg)
	delegationZone(dw, 20000)
	dw.Flush()
	root, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 100<<10)
	huge := strings.Repeat("y", 3<<20)
	var odd strings.Builder
	odd.WriteString("$ORIGIN odd.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n")
	for i := range 30000 {
		switch i % 1000 {
		case 10:
			fmt.Fprintf(&odd, "l%d TXT %s\n", i, long)
		case 20:
			fmt.Fprintf(&odd, "$TTL %d\n", 60+i)
		case 30:
			fmt.Fprintf(&odd, "p%d TXT ( \"a\"\n  \"b\" ) ; c\n", i)
		case 40:
			fmt.Fprintf(&odd, "m%d TXT a$b\n$ORIGIN s%d.odd.test.\n", i, i)
		}
		if i == 15500 {
			fmt.Fprintf(&odd, "h%d TXT %s\n", i, huge)
		}
		fmt.Fprintf(&odd, "n%d A 192.0.2.%d\n", i, i%250)
	}
	odd.WriteString("last A 192.0.2.1")
	texts := map[string][]byte{
		"deleg":        deleg.Bytes(),
		"root":         root,
		"odd":          []byte(odd.String()),
		"tricky":       trickyZone(2, 20000, false, inc),
		"tricky noTTL": trickyZone(4, 20000, true, inc),
		"include":      mustRead(t, filepath.Join("testdata", "include", "main.zone")),
	}
	for name, text := range texts {
		for want := 1; want <= 9; want++ {
			wl, wc := scanLines(bytes.NewReader(text), int64(len(text)), want, "odd.test.")
			for _, fast := range []bool{false, true} {
				s := &splitScanner{want: want, size: int64(len(text)), origin: "odd.test.", chunks: []chunk{{line: 1, origin: "odd.test."}}}
				s.next = s.size / int64(want)
				if err := s.read(bytes.NewReader(text), fast); err != nil {
					t.Fatal(err)
				}
				if s.lines != wl || !slices.Equal(s.chunks, wc) {
					t.Errorf("%s in %d chunks (fast %v): %d lines, chunks %+v; a line at a time %d, %+v", name, want, fast, s.lines, s.chunks, wl, wc)
				}
			}
		}
	}
}
