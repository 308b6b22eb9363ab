package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestQuickMatrix runs the harness in quick mode: every server on the small
// zone for one short run of each load. It is a smoke test of the harness
// (topology, servers, generators, parsing, result files), not a measurement.
func TestQuickMatrix(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	skip := func(why string) {
		if ci {
			t.Fatalf("%s, and CI=true: the benchmark harness must be exercised in CI", why)
		}
		t.Skip(why)
	}
	if testing.Short() {
		t.Skip("the quick matrix takes about a minute")
	}
	if os.Geteuid() != 0 {
		skip("needs root to create network namespaces and attach XDP programs")
	}
	for _, tool := range []string{"kxdpgun", "dnsperf", "ip", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip(tool + " is not installed (scripts/test.sh installs it)")
		}
	}
	out := t.TempDir()
	var log strings.Builder
	w, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	err = Run(Options{Quick: true, Servers: allServers, Out: out}, w)
	w.Close()
	b, _ := os.ReadFile(w.Name())
	log.Write(b)
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
