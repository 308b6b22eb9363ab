package archtest

import (
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/internal/testenv"
)

const mod = "github.com/ringdns/ringdns"

// TestHouseRules checks ringdns against HouseRules.
func TestHouseRules(t *testing.T) {
	if runtime.GOOS != "linux" {
		// nic's ports and their roots are Linux's; the tests run there.
		t.Skipf("skipping: the house rules name Linux's ports, and this is %s", runtime.GOOS)
	}
	goTool := testenv.RequireTool(t, "go", "it runs go list; put the Go toolchain's bin directory in PATH")
	res, err := Check(goTool, filepath.Join("..", ".."), HouseRules(mod))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range res.Violations {
		t.Error(v)
	}
	// The walk must get where the packets go, or its silence means
	// nothing: through nic.Port to both ports' helpers, into the answer
	// engine, the zone tables and the checksum.
	t.Logf("the hot path rule looked into %d functions", len(res.Hot))
	for _, fn := range []string{
		"(*" + mod + "/dataplane.Snapshot).answer",
		"(*" + mod + "/nic.Headers).Strip",
		"(*" + mod + "/nic.Headers).Reply",
		"(*" + mod + "/nic.UDPPort).recv",
		"(*" + mod + "/zone.Zone).Find",
		mod + "/internal/onessum.Sum",
	} {
		if !slices.Contains(res.Hot, fn) {
			t.Errorf("the hot path rule did not reach %s", fn)
		}
	}
}

// TestCheckerFails runs the checker on testdata/house, a module of the same
// layout that breaks every rule, and holds it to the exact list of what it
// must find: each rule's violations, and none where the fixture stays
// within a rule (fmt in setup code, unsafe in nic, a closure called per
// packet, the one allowed fmt.Errorf). Beyond HouseRules it is given a
// root that does not exist, an allowance with the wrong count and one that
// matches nothing, which must be reported too.
func TestCheckerFails(t *testing.T) {
	goTool := testenv.RequireTool(t, "go", "it runs go list; put the Go toolchain's bin directory in PATH")
	const fix = "example.com/house"
	rules := HouseRules(fix)
	rules.Hot.Roots = append(rules.Hot.Roots, "("+fix+"/dataplane.Worker).Gone")
	rules.Hot.Allow = append(rules.Hot.Allow,
		Allowed{Caller: "(*" + fix + "/nic.XDPPort).Receive", Callee: "log.Printf", Count: 2, Why: "a wrong count"},
		Allowed{Caller: "(*" + fix + "/nic.XDPPort).Send", Callee: "fmt.Sprintf", Count: 1, Why: "stale"},
	)
	res, err := Check(goTool, filepath.Join("testdata", "house"), rules)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range res.Violations {
		got = append(got, v.String())
	}
	hot := "the packet path calls no fmt, log or miekg/dns: "
	want := []string{
		"dataplane imports no controlplane: example.com/house/dataplane -> example.com/house/controlplane/control",
		"nic imports no DNS code: example.com/house/nic -> github.com/miekg/dns",
		hot + "(*dataplane.Snapshot).Answer -> github.com/miekg/dns.Pack (dataplane/worker.go:68:13)",
		hot + "(*dataplane.Worker).ServeBatch -> (*dataplane.Snapshot).answer -> fmt.Sprint (dataplane/worker.go:73:18)",
		hot + "(*dataplane.Worker).ServeBatch calls a function value at dataplane/worker.go:58:3, which the check cannot follow",
		hot + "(*nic.XDPPort).Receive -> log.Printf (nic/port.go:40:6): 1 references, 2 allowed (a wrong count)",
		hot + "(*nic.XDPPort).Send -> github.com/cilium/ebpf.Kick, whose package links fmt",
		hot + "allowed call (*example.com/house/nic.XDPPort).Send -> fmt.Sprintf no longer happens: remove it from the list",
		hot + "root (example.com/house/dataplane.Worker).Gone not found: the rule checks nothing there; name the function that replaced it",
		"the packet path imports no log or miekg/dns: example.com/house/dataplane -> github.com/miekg/dns",
		"the packet path imports no log or miekg/dns: example.com/house/nic -> github.com/miekg/dns",
		"the packet path imports no log or miekg/dns: example.com/house/nic -> log",
		"unsafe only in nic: example.com/house/zone (in its tests) imports unsafe",
		"zone imports no packet code: example.com/house/zone -> example.com/house/nic",
		"zone imports no packet code: example.com/house/zone -> github.com/cilium/ebpf",
		"zone opens no socket: example.com/house/zone -> net",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing: %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected: %s", g)
		}
	}
	// Every rule of HouseRules is among those that failed.
	for _, name := range ruleNames(HouseRules(fix)) {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, name+": ") }) {
			t.Errorf("rule %q found nothing in the fixture", name)
		}
	}
}

func ruleNames(r Rules) []string {
	names := []string{"unsafe only in nic", r.Hot.Name}
	for _, ir := range r.Imports {
		if !slices.Contains(names, ir.Name) {
			names = append(names, ir.Name)
		}
	}
	return names
}
