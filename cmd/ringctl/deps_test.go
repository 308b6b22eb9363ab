package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/internal/testenv"
)

// TestRingctlLinksNoDaemon lists the packages linked into ringctl and fails
// when one of the daemon's appears: the data plane, the zone tables, the
// daemon's control plane itself, or what only they need (cilium/ebpf,
// Prometheus, TOML, miekg/dns). ringctl speaks the control protocol and
// nothing else; package control keeps that protocol apart so that the
// client stays small and does not change when the daemon's internals do.
func TestRingctlLinksNoDaemon(t *testing.T) {
	goTool := testenv.RequireTool(t, "go", "it runs go list; put the Go toolchain's bin directory in PATH")
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	const mod = "github.com/ringdns/ringdns/"
	forbidden := []string{
		mod + "controlplane", mod + "dataplane", mod + "nic", mod + "zone",
		"github.com/cilium/ebpf", "github.com/prometheus/", "github.com/BurntSushi/toml", "github.com/miekg/dns",
	}
	pkgs := strings.Fields(string(out))
	for _, p := range pkgs {
		for _, f := range forbidden {
			// A forbidden project package counts with its subpackages
			// (nic/nictest), but controlplane/control is the protocol
			// ringctl is meant to use.
			if (p == f || strings.HasPrefix(p, strings.TrimSuffix(f, "/")+"/")) && p != mod+"controlplane/control" {
				t.Errorf("ringctl links %s", p)
			}
		}
	}
	if !t.Failed() && !strings.Contains(string(out), mod+"controlplane/control\n") {
		t.Errorf("ringctl does not link %scontrolplane/control; go list printed:\n%s", mod, out)
	}
}
