package zone

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reloadZoneText is a zone of delegations with glue and DS, whose serial
// is serial; edit rewrites its text for a case. The apex's NS and MX name
// their targets in capitals, which Walk yields in lowercase.
func reloadZoneText(serial int, edit func(string) string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "$ORIGIN tld.\n$TTL 3600\n@ SOA NS1.Nic hostmaster 2026120%d 1800 900 604800 300\n", serial)
	sb.WriteString("@ NS NS1.NIC\n@ MX 10 Mail.NIC\nns1.nic A 192.0.2.1\nmail.nic A 192.0.2.25\n; a comment\n")
	for i := range 60 {
		fmt.Fprintf(&sb, "d%d NS ns1.d%d\nns1.d%d A 10.0.0.%d\nd%d DS 1 13 2 %064x\n", i, i, i, i, i, i)
	}
	if edit != nil {
		return edit(sb.String())
	}
	return sb.String()
}

// sameRecords fails the test unless a and b hold the same records, TTLs
// included.
func sameRecords(t *testing.T, what string, a, b *Zone) {
	t.Helper()
	var diffs []string
	Diff(a, b, func(del bool, r *Record) error {
		rr, _ := r.RR()
		diffs = append(diffs, fmt.Sprintf("del=%v %v", del, rr))
		return nil
	})
	if len(diffs) > 0 {
		t.Errorf("%s: the records differ from a fresh load:\n%s", what, strings.Join(diffs, "\n"))
	}
}

// TestReloadText checks which way a reloaded file makes the new version,
// that each way holds the records a fresh load of the file does, and that
// the served version is left as it was.
func TestReloadText(t *testing.T) {
	base := reloadZoneText(1, nil)
	served := mustParse(t, base, "tld.")
	records := served.Records()
	for _, c := range []struct {
		name string
		text string
		max  int
		how  string // a prefix of Reloaded.How
		diff int    // records in Del and Add together, when applied
	}{
		{"comments and case only", strings.Replace(strings.Replace(base, "; a comment", "; another", 1), "ns1.d3 A", "NS1.D3 A", 1),
			100, "unchanged", 0},
		{"glue and SOA", reloadZoneText(2, func(s string) string {
			return strings.Replace(s, "ns1.d3 A 10.0.0.3", "ns1.d3 A 10.9.9.9", 1)
		}), 100, "incremental", 4},
		{"TTL", reloadZoneText(2, func(s string) string {
			return strings.Replace(s, "ns1.d5 A 10.0.0.5", "ns1.d5 60 A 10.0.0.5", 1)
		}), 100, "incremental", 3},
		{"DS replaced", reloadZoneText(2, func(s string) string {
			return strings.Replace(s, fmt.Sprintf("d7 DS 1 13 2 %064x", 7), "d7 DS 2 13 2 "+strings.Repeat("ab", 32), 1)
		}), 100, "incremental", 4},
		{"delegation removed", reloadZoneText(2, func(s string) string {
			return strings.Replace(s, fmt.Sprintf("d8 NS ns1.d8\nns1.d8 A 10.0.0.8\nd8 DS 1 13 2 %064x\n", 8), "", 1)
		}), 100, "", 5},
		{"delegation added", reloadZoneText(2, func(s string) string {
			return s + "new NS ns.example.\n"
		}), 100, "", 3},
		{"over the limit", reloadZoneText(2, func(s string) string {
			return strings.ReplaceAll(s, "A 10.0.0.", "A 10.0.1.")
		}), 20, "built: more than 20 records changed", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := ReloadText(served, []byte(c.text), "mem.zone", c.max)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(r.How, c.how) {
				t.Errorf("How = %q, want %q", r.How, c.how)
			}
			if c.how == "unchanged" && r.Zone != served {
				t.Error("an unchanged file made a new version")
			}
			if c.diff > 0 && len(r.Del)+len(r.Add) != c.diff {
				t.Errorf("the difference has %d deletions and %d additions, want %d records:\n%v\n%v", len(r.Del), len(r.Add), c.diff, r.Del, r.Add)
			}
			sameRecords(t, "reloaded", r.Zone, mustParse(t, c.text, "tld."))
			if served.Records() != records {
				t.Error("the served version changed")
			}
			sameRecords(t, "served", served, mustParse(t, base, "tld."))
		})
	}
}

// TestReloadFileBad: a file that does not parse, or whose records break a
// zone rule, is an error naming the file and the line, whichever way the
// difference would have been made.
func TestReloadFileBad(t *testing.T) {
	served := mustParse(t, reloadZoneText(1, nil), "tld.")
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		text string
		want string
	}{
		{"syntax", reloadZoneText(2, func(s string) string { return strings.Replace(s, "ns1.d3 A 10.0.0.3", "ns1.d3 A 10.0.0.300", 1) }), "A"},
		{"CNAME and other data", reloadZoneText(2, func(s string) string { return s + "ns1.d4 CNAME elsewhere.example.\n" }), "CNAME"},
		{"no SOA", reloadZoneText(2, func(s string) string {
			return strings.Replace(s, "@ SOA NS1.Nic hostmaster 20261202 1800 900 604800 300\n", "", 1)
		}), "SOA"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".zone")
			if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := ReloadFile(served, path, 1000)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("ReloadFile = %+v, %v; want a *LoadError", r, err)
			}
			if le.File != path || !strings.Contains(le.Error(), c.want) {
				t.Errorf("error %q: want one naming %s and %q", err, path, c.want)
			}
			if c.name != "no SOA" && le.Line == 0 {
				t.Errorf("error %q names no line", err)
			}
		})
	}
	// A good file from disk: applied.
	path := filepath.Join(dir, "good.zone")
	text := reloadZoneText(2, func(s string) string { return strings.Replace(s, "ns1.d3 A 10.0.0.3", "ns1.d3 A 10.9.9.9", 1) })
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReloadFile(served, path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if r.How != "incremental" || r.Zone.File() != path || r.Zone.Serial() != 20261202 {
		t.Errorf("How %q, file %q, serial %d", r.How, r.Zone.File(), r.Zone.Serial())
	}
	sameRecords(t, "from disk", r.Zone, mustParse(t, text, "tld."))
}
