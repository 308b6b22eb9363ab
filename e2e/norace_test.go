//go:build !race

package e2e

// raceFlags is empty when the tests run without the race detector.
var raceFlags []string
