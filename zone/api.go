package zone

import "fmt"

// LoadError is a zone that could not be loaded. File and Line name the
// place of the first error when it has one.
type LoadError struct {
	Origin string
	File   string
	Line   int
	Msg    string
}

func (e *LoadError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: zone %s: %s", e.File, e.Line, e.Origin, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: zone %s: %s", e.File, e.Origin, e.Msg)
	default:
		return fmt.Sprintf("zone %s: %s", e.Origin, e.Msg)
	}
}
