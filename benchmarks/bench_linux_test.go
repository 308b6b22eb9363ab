package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/internal/netns/netnstest"
)

// TestQuickMatrix runs the harness in quick mode: every server on the small
// zone for one short run of each load. It is a smoke test of the harness
// (topology, servers, generators, parsing, result files), not a measurement.
func TestQuickMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick matrix takes about a minute")
	}
	netnstest.Require(t)
	for _, tool := range []string{"kxdpgun", "dnsperf", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed, and CI=true: the benchmark harness must be exercised in CI", tool)
			}
			t.Skipf("%s is not installed (scripts/test.sh installs it)", tool)
		}
	}
	out := t.TempDir()
	var log strings.Builder
	err := Run(Options{Quick: true, Servers: allServers, Out: out}, &log)
	t.Logf("harness output:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadDir(out)
	if len(md) != 2 {
		t.Fatalf("results directory holds %d files, want a .md and a .csv", len(md))
	}
	for _, e := range md {
		body, err := os.ReadFile(out + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range allServers {
			if !strings.Contains(string(body), string(s)) {
				t.Errorf("%s does not mention %s", e.Name(), s)
			}
		}
	}
}
