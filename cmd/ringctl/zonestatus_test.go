package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
)

// TestPrintZoneStatus prints a primary, a secondary served and one not yet
// transferred, and checks that each line the operator reads is there.
func TestPrintZoneStatus(t *testing.T) {
	now := time.Now()
	members := 12
	zs := []control.ZoneTransferStatus{
		{Origin: "example.", File: "example.zone", Role: "primary", Serving: true, Serial: 7, ZONEMD: "verified sha384"},
		{Origin: "sec.example.", File: "sec.zone", Role: "secondary", Serving: true, Serial: 2026120502,
			Primaries: []string{"192.0.2.1:53"}, Key: "xfr-key.", LastRefresh: now.Add(-time.Minute),
			NextRefresh: now.Add(time.Hour), Expires: now.Add(24 * time.Hour), Transfers: 2, Notifies: 1,
			LastTransfer: &control.TransferStatus{Kind: "IXFR", Primary: "192.0.2.1:53", Started: now, Seconds: 0.012,
				Bytes: 812, Serial: 2026120502, Result: "ok", Applied: "incremental", ApplySeconds: 0.004}},
		{Origin: "new.example.", File: "new.zone", Role: "secondary", Primaries: []string{"192.0.2.1:53"},
			Expired: true, Failures: 3, LastError: "SOA query to 192.0.2.1:53 over udp: i/o timeout",
			Catalog: "catz.example."},
		{Origin: "catz.example.", File: "catz.zone", Role: "secondary", Serving: true, Serial: 4,
			Primaries: []string{"192.0.2.1:53"}, CatalogMembers: &members},
	}
	data, err := json.Marshal(zs)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printHuman(&out, control.CmdZoneStatus, data); err != nil {
		t.Fatal(err)
	}
	// The columns' widths depend on each zone's longest label: spaces
	// are compared as one.
	got := strings.Join(strings.Fields(strings.ReplaceAll(out.String(), "\n", " | ")), " ")
	for _, want := range []string{
		"example.      primary, serial 7, served",
		"sec.example.     secondary, serial 2026120502, served",
		"primaries      192.0.2.1:53 (key xfr-key.)",
		"ZONEMD         verified sha384",
		"last transfer  IXFR from 192.0.2.1:53 at ",
		": 812 bytes in 0.012s (applied incremental in 0.004s), ok",
		"2 transfers, 0 failed refreshes, 1 NOTIFY",
		"new.example.     secondary, serial 0, not yet transferred: answered SERVFAIL",
		"last error     SOA query to 192.0.2.1:53 over udp: i/o timeout",
		"catalog        member of catz.example.",
		"catalog        12 member zones",
	} {
		if want = strings.Join(strings.Fields(want), " "); !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
	// A primary zone has no refresh lines.
	if first := strings.SplitN(out.String(), "\n\n", 2)[0]; strings.Contains(first, "refresh") {
		t.Errorf("the primary zone has refresh lines:\n%s", first)
	}
}

// TestRingctlTransferArgs: refresh, retransfer and notify take exactly one
// zone, refused before any connection is made.
func TestRingctlTransferArgs(t *testing.T) {
	for _, args := range [][]string{{"refresh"}, {"retransfer", "a.", "b."}, {"notify"}} {
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"-s", "/nonexistent/sock"}, args...), &stdout, &stderr); code != 2 ||
			!strings.Contains(stderr.String(), "takes one zone") {
			t.Errorf("ringctl %v: exit %d, stderr %q; want 2 and \"takes one zone\"", args, code, stderr.String())
		}
	}
}
