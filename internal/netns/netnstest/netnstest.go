// Package netnstest adapts package netns to tests: it skips a test that
// cannot build a namespace pair (saying why) or fails it under CI=true, as
// package testenv does for every such test, and ties the pair's deletion to
// the test's cleanup. Package netns itself does not import testing, since
// the benchmark harness, a program, uses it too.
package netnstest

import (
	"fmt"
	"testing"

	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/testenv"
)

// Require stops tb as testenv.Require does when this process cannot build
// a netns.Pair (not root, or no iproute2), saying why.
func Require(tb testing.TB) {
	tb.Helper()
	if err := netns.Available(); err != nil {
		testenv.Require(tb, fmt.Errorf("this test %w", err))
	}
}

// NewPair is netns.NewPair for a test: it calls Require, fails tb when the
// pair cannot be built, and deletes the pair in tb's cleanup. Called before
// the test opens anything in the namespaces, its cleanup runs after theirs.
func NewPair(tb testing.TB, cfg netns.Config) *netns.Pair {
	tb.Helper()
	Require(tb)
	p, err := netns.NewPair(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// Run is netns.Run that fails tb, with the command's output, when the
// command fails.
func Run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := netns.Run(name, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
