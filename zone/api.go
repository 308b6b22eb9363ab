package zone

import "fmt"

// LoadError is a zone that could not be loaded. File and Line name the
// place of the first error when it has one (Line is 0 when it has none).
// Column is known only for a syntax error, which the zone parser of
// miekg/dns finds: it counts bytes from 1 and points where the parser
// stood, at the end of the offending token or the byte just after it.
//
// Err is the error underneath, when there is one: miekg/dns's
// *dns.ParseError for a syntax error or an $INCLUDE that cannot be read,
// the operating system's error for a file that cannot be read. Unwrap
// returns it, so that errors.Is and errors.As reach it through the
// LoadError.
type LoadError struct {
	Origin string
	File   string
	Line   int
	Column int
	Msg    string
	Err    error
}

// Error names the place as compilers do, FILE:LINE:COLUMN, with the parts
// that are known.
func (e *LoadError) Error() string {
	switch {
	case e.File != "" && e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: zone %s: %s", e.File, e.Line, e.Column, e.Origin, e.Msg)
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: zone %s: %s", e.File, e.Line, e.Origin, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: zone %s: %s", e.File, e.Origin, e.Msg)
	default:
		return fmt.Sprintf("zone %s: %s", e.Origin, e.Msg)
	}
}

// Unwrap returns the error underneath, or nil.
func (e *LoadError) Unwrap() error { return e.Err }
