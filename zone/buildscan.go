package zone

import (
	"bytes"
	"io"
)

// scanPiece is the longest piece of a line the scanner is given: a line
// longer than that comes in pieces of that size from its start, as a
// 64 KiB bufio.Reader's ReadSlice gives them (the scanner read the text
// that way), so that where it may cut does not depend on how it reads.
const scanPiece = 64 << 10

// scanBlock is how much of the text read holds at a time, and scanGroup
// the lines it takes at once when they can change nothing but the line
// count.
const (
	scanBlock = 1 << 20
	scanGroup = 16 << 10
)

// read feeds the text r gives to the scanner. A group of whole lines
// (about scanGroup bytes) that holds none of the bytes that change the
// scanner's state, no directive, and no place where a cut is due is
// counted whole: the scan reads every byte of a large file before the
// parallel parse can start, and taking each of its millions of lines on
// its own (a read, a call and a check per line) was most of the scan's
// time. Every other group, or every group when fast is false, goes to
// piece a line at a time, as before.
func (s *splitScanner) read(r io.Reader, fast bool) error {
	buf := make([]byte, scanBlock)
	have := 0
	eof := false
	for {
		if !eof {
			n, err := io.ReadFull(r, buf[have:])
			have += n
			switch err {
			case nil:
			case io.EOF, io.ErrUnexpectedEOF:
				eof = true
			default:
				return err
			}
		}
		data := buf[:have]
		i := 0
	scan:
		for i < len(data) {
			stop := len(data) // where this round of pieces ends
			if fast && !s.midLine {
				g := min(i+scanGroup, len(data))
				if k := bytes.IndexByte(data[g:], '\n'); k >= 0 {
					g += k + 1
				} else if eof {
					g = len(data)
				} else {
					g = bytes.LastIndexByte(data[:g], '\n') + 1
				}
				if g > i {
					if s.countOnly(data[i:g]) {
						s.lines += bytes.Count(data[i:g], []byte{'\n'})
						s.off += int64(g - i)
						i = g
						continue
					}
					stop = g
				}
			}
			// The group's lines one piece at a time: up to and with a
			// newline, at most scanPiece bytes; a line's end that may
			// still come is read first.
			for i < stop {
				p := data[i:]
				if k := bytes.IndexByte(p[:min(len(p), scanPiece)], '\n'); k >= 0 {
					p = p[:k+1]
				} else if len(p) >= scanPiece {
					p = p[:scanPiece]
				} else if !eof {
					break scan
				}
				s.piece(p)
				i += len(p)
			}
		}
		if eof {
			return nil
		}
		have = copy(buf, data[i:])
	}
}

// countOnly reports whether the whole lines g change nothing but the line
// count: the scanner is outside quotes, escapes and comments, g holds none
// of the bytes that change that, and, unless cuts are over, g starts no
// directive and no cut is due within it (a cut goes at the first fitting
// line at or after s.next).
func (s *splitScanner) countOnly(g []byte) bool {
	if s.inQuote || s.escape || s.comment || hasSplitSpecial(g) {
		return false
	}
	if s.paren > 0 || s.unsure {
		return true
	}
	if len(s.chunks) < s.want && s.next < s.off+int64(len(g)) {
		return false
	}
	for j := 0; ; {
		k := bytes.IndexByte(g[j:], '$')
		if k < 0 {
			return true
		}
		if j+k == 0 || g[j+k-1] == '\n' {
			return false
		}
		j += k + 1
	}
}
