package conformance

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ringdns/ringdns/internal/testenv"
)

var (
	seedFlag    = flag.Int64("conformance.seed", 1, "seed of the query corpus")
	ringdnsFlag = flag.String("conformance.ringdns", "", "ringdns binary to test; empty builds ../cmd/ringdns")
	verboseFlag = flag.Bool("conformance.v", false, "log the full report even when the test passes")
	dumpFlag    = flag.String("conformance.dump", "", "write every differing comparison in full to `DIR`/SUITE.txt")
)

// identity is configured equally on both servers so that CHAOS and NSID
// replies are comparable.
var identity = Identity{Identity: "conformance.test", Version: "conformance-1", NSID: "ns-conformance"}

// udpSize is the EDNS payload size both servers advertise and enforce.
const udpSize = 1232

// maxSuiteQueries bounds one suite's corpus: the root zone's is the largest,
// and five suites of this size, twice over (TestConformance and
// TestKnotAgainstKnot), stay within about two minutes under -race.
const maxSuiteQueries = 25000

// Timeouts and concurrency: bounded so that the run stays polite on a
// shared two-core machine and a lost datagram costs little.
const (
	queryTimeout = 800 * time.Millisecond
	workers      = 8
	startTimeout = 60 * time.Second
)

// suite is a set of zones served together by one pair of servers. load
// returns the zones; it runs inside the suite's subtest, which it may skip.
type suite struct {
	name string
	load func(t *testing.T) []*Zone
}

// rootZonePath prefers the project's copy of the root zone and falls back to
// the shared snapshot the copy was made from.
func rootZonePath(t *testing.T) string {
	for _, p := range []string{"../zone/testdata/root.zone", "/work/shared/zones/root.zone"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no root zone: expected ../zone/testdata/root.zone")
	return ""
}

// craftedZones loads the crafted edge-case zones of testdata.
func craftedZones(t *testing.T) []*Zone {
	files, err := filepath.Glob("testdata/*.zone")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var crafted []*Zone
	for _, f := range files {
		origin := strings.TrimSuffix(filepath.Base(f), ".zone") + "."
		z, err := LoadZone(origin, f)
		if err != nil {
			t.Fatal(err)
		}
		crafted = append(crafted, z)
	}
	if len(crafted) == 0 {
		t.Fatal("no crafted zones in testdata")
	}
	return crafted
}

// suites lists the server pairs: the real signed root zone on its own; the
// crafted edge-case zones together without a root, so that names outside
// them are REFUSED rather than referred to the root; and the crafted zones
// signed in the test with fresh keys, once with each kind of denial of
// existence (NSEC, NSEC3, NSEC3 with opt-out), served as signed files by
// both servers.
func suites() []suite {
	signed := func(denial Denial) func(t *testing.T) []*Zone {
		return func(t *testing.T) []*Zone {
			zones, err := SignZones(signTools(t), t.TempDir(), craftedZones(t), denial, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return zones
		}
	}
	return []suite{
		{"root", func(t *testing.T) []*Zone {
			root, err := LoadZone(".", rootZonePath(t))
			if err != nil {
				t.Fatal(err)
			}
			return []*Zone{root}
		}},
		{"crafted", craftedZones},
		{"signed-nsec", signed(DenialNSEC)},
		{"signed-nsec3", signed(DenialNSEC3)},
		{"signed-nsec3-optout", signed(DenialNSEC3OptOut)},
	}
}

// signTools finds the ldns programs the signed suites are made with.
// Without them those suites cannot run: they skip locally and fail in CI,
// where a skip would hide a lost check.
func signTools(t *testing.T) SignTools {
	tools, err := FindSignTools()
	if err != nil {
		testenv.Require(t, fmt.Errorf("the signed suites compare ringdns with Knot DNS on zones signed with ldns: %w", err))
	}
	return tools
}

// knotd finds the knotd binary. Without it the comparison cannot run: the
// test skips locally and fails in CI, where a skip would hide a lost check.
func knotd(t *testing.T) string {
	return testenv.RequireTool(t, "knotd", "Debian package knot; the conformance test compares ringdns with it")
}

// ringdnsBinary returns the ringdns binary to test, building ../cmd/ringdns
// into a temporary directory unless -conformance.ringdns names one.
func ringdnsBinary(t *testing.T) string {
	if *ringdnsFlag != "" {
		return *ringdnsFlag
	}
	bin := filepath.Join(t.TempDir(), "ringdns")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/ringdns")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ringdns: %v\n%s", err, out)
	}
	return bin
}

// startPair starts the reference knotd and the server under test for a
// suite and stops both when the test ends, whatever happens.
func startPair(t *testing.T, zones []*Zone, startTest func(dir string) (*Server, error)) (ref, test *Server) {
	knot := knotd(t)
	ref, err := StartKnot("knotd", knot, t.TempDir(), zones, identity, udpSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ref.Stop)
	test, err = startTest(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(test.Stop)
	for _, srv := range []*Server{ref, test} {
		if err := srv.WaitReady(zones, startTimeout); err != nil {
			t.Fatal(err)
		}
	}
	return ref, test
}

// compareSuite sends a suite's corpus to both servers and reports.
func compareSuite(t *testing.T, name string, zones []*Zone, ref, test *Server, deliberate []*Deliberate) *Report {
	queries := Generate(zones, *seedFlag, true)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	start := time.Now()
	outcomes, err := Run(ctx, queries, ref.Addr, test.Addr, workers, queryTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if *dumpFlag != "" {
		f, err := os.Create(filepath.Join(*dumpFlag, name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := Dump(f, outcomes); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReport(name, outcomes, deliberate)
	t.Logf("%s: %d queries (seed %d) in %v", name, len(queries), *seedFlag, time.Since(start).Round(time.Millisecond))
	return r
}

// TestConformance compares ringdns with knotd on every suite and fails on
// any difference listed neither in testdata/deliberate.txt (choices with an
// RFC reason) nor in testdata/gaps.txt (missing features, each naming the
// open issue that removes it). It logs, suite by suite, how many
// comparisons differ only in known gaps and which gap entries they hit, so
// that the work on an issue shows as those counts fall.
func TestConformance(t *testing.T) {
	knotd(t)
	deliberate, err := LoadDeliberate("testdata/deliberate.txt")
	if err != nil {
		t.Fatal(err)
	}
	gaps, err := LoadGaps("testdata/gaps.txt")
	if err != nil {
		t.Fatal(err)
	}
	// Deliberate entries come first: a difference that is a choice is
	// never counted as a gap.
	deliberate = append(deliberate, gaps...)
	bin := ringdnsBinary(t)
	total, identical, gapped := 0, 0, 0
	var perSuite []string
	for _, s := range suites() {
		t.Run(s.name, func(t *testing.T) {
			zones := s.load(t)
			ref, test := startPair(t, zones, func(dir string) (*Server, error) {
				return StartRingdns("ringdns", bin, dir, zones, identity, udpSize)
			})
			r := compareSuite(t, s.name, zones, ref, test, deliberate)
			total += r.Total
			identical += r.Identical
			gapped += r.Gaps
			t.Log(r.Summary())
			gapLine := fmt.Sprintf("%s: %d/%d identical, %d differ only in known gaps%s", s.name, r.Identical, r.Total, r.Gaps, r.GapEntries())
			perSuite = append(perSuite, gapLine)
			t.Log(gapLine)
			if r.Unexpected > 0 {
				t.Errorf("differences listed neither in testdata/deliberate.txt nor in testdata/gaps.txt:\n%s", r)
			} else if *verboseFlag || testing.Verbose() {
				t.Logf("\n%s", r)
			}
		})
	}
	t.Logf("all suites: %d/%d identical, %d differ in known gaps (testdata/gaps.txt)\n  %s", identical, total, gapped, strings.Join(perSuite, "\n  "))
	if !t.Failed() {
		for _, e := range Unused(deliberate) {
			file := "deliberate.txt"
			if e.Gap {
				file = "gaps.txt"
			}
			t.Logf("%s:%d matched nothing (stale?): %s", file, e.Line, e.Kind)
		}
	}
}

// TestKnotAgainstKnot proves the harness: two knotd processes with the same
// configuration must agree on every query of the full corpus, so any
// difference found against ringdns comes from ringdns, not from the
// generator, the exchange, the comparison or the signing.
func TestKnotAgainstKnot(t *testing.T) {
	if testing.Short() {
		t.Skip("the full corpus against two knotd processes is not short")
	}
	knot := knotd(t)
	for _, s := range suites() {
		t.Run(s.name, func(t *testing.T) {
			zones := s.load(t)
			ref, test := startPair(t, zones, func(dir string) (*Server, error) {
				return StartKnot("knotd-2", knot, dir, zones, identity, udpSize)
			})
			r := compareSuite(t, s.name, zones, ref, test, nil)
			t.Log(r.Summary())
			if r.Identical != r.Total {
				t.Errorf("two knotd processes differ:\n%s", r)
			}
			if r.Total < 1000 {
				t.Errorf("only %d comparisons: the corpus generator lost its queries", r.Total)
			}
		})
	}
}

// TestCorpusSize pins the floor of 20,000 queries across the zones,
// a ceiling per suite that keeps the whole run within about two minutes
// under -race on two cores, and the determinism of the generator.
func TestCorpusSize(t *testing.T) {
	total := 0
	for _, s := range suites() {
		t.Run(s.name, func(t *testing.T) {
			zones := s.load(t)
			q1 := Generate(zones, *seedFlag, true)
			q2 := Generate(zones, *seedFlag, true)
			if len(q1) != len(q2) {
				t.Fatalf("corpus sizes %d and %d from one seed", len(q1), len(q2))
			}
			for i := range q1 {
				if string(q1[i].Wire) != string(q2[i].Wire) {
					t.Fatalf("query %d differs between two generations from one seed: %s vs %s", i, &q1[i], &q2[i])
				}
			}
			cats := map[string]int{}
			for i := range q1 {
				cats[q1[i].Category]++
			}
			t.Logf("%d queries %v", len(q1), cats)
			if len(q1) > maxSuiteQueries {
				t.Errorf("%d queries, more than %d: the run would outgrow its time", len(q1), maxSuiteQueries)
			}
			total += len(q1)
		})
	}
	if total < 20000 {
		t.Errorf("corpus has %d queries, want at least 20000", total)
	}
}
