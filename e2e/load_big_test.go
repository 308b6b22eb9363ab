package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/testenv"
)

// TestLoadBig: a full load of the generated TLD, unsigned and signed with
// NSEC3, by ringdns and by knotd, alternating, from the start of the
// process to its first answer of the zone's SOA: the wall time, the CPU
// the process had used by then, its peak resident size (VmHWM) and its
// resident size a second later (issue 14's load targets: half of knotd's
// time, a peak of at most 1.3 times the final size, a final size of at
// most half of knotd's). It only reports; RINGDNS_BIG=1 runs it,
// RINGDNS_BIG_RUNS sets the rounds (5). The signed zone is signed by
// ldns-signzone (about 1.5 minutes), as the benchmarks' is.
//
// The first answer is asked for every 20 ms, each query waiting 20 ms, by
// this process. Polling with a dig started every 20 ms, as a shell script
// would, took enough of the second core to slow ringdns's load, which
// uses both, by a fifth or more (the delegations: 2.0-2.4 s against
// 1.4-1.8 s this way), and knotd's, which uses one, hardly at all.
func TestLoadBig(t *testing.T) {
	runs := requireBig(t)
	if _, err := exec.LookPath("knotd"); err != nil {
		t.Fatalf("knotd (Debian package knot) is needed: %v", err)
	}
	dir := t.TempDir()
	z := newBigTLD(bigTLDSize)
	plain := filepath.Join(dir, "bench.zone")
	z.write(t, plain)
	signed := signBigTLD(t, dir, z.origin, plain)
	for _, zf := range []struct{ name, file string }{{"1M delegations", plain}, {"NSEC3-signed TLD", signed}} {
		var rows [2][]loadRun
		for run := range runs {
			for i, start := range []func(t *testing.T, dir, origin, file string, port int) *exec.Cmd{startKnotLoad, startRingdnsLoad} {
				r := measureLoad(t, start, z.origin, zf.file)
				rows[i] = append(rows[i], r)
				t.Logf("%s, round %d, %s: %s; load %s", zf.name, run, r.server, r, loadavg())
			}
			k, g := rows[0][run], rows[1][run]
			t.Logf("%s, round %d: ringdns's wall time %.2f of knotd's, final size %.2f of knotd's, peak %.2f of its final size",
				zf.name, run, g.wall.Seconds()/k.wall.Seconds(), float64(g.after)/float64(k.after), float64(g.peak)/float64(g.after))
		}
		for i := range rows {
			var walls, cpus []time.Duration
			var peaks, afters []int
			for _, r := range rows[i] {
				walls, cpus = append(walls, r.wall), append(cpus, r.cpu)
				peaks, afters = append(peaks, r.peak), append(afters, r.after)
			}
			slices.Sort(peaks)
			slices.Sort(afters)
			t.Logf("%s, %s, %d rounds: wall %s; CPU %s; peak %d-%d MiB; after %d-%d MiB",
				zf.name, rows[i][0].server, runs, spread(walls), spread(cpus), peaks[0], peaks[len(peaks)-1], afters[0], afters[len(afters)-1])
		}
	}
}

// loadRun is one load measured by measureLoad.
type loadRun struct {
	server      string
	wall, cpu   time.Duration
	peak, after int // MiB
}

func (r loadRun) String() string {
	return fmt.Sprintf("wall %.2f s, CPU %.2f s, peak %d MiB, after %d MiB (%.2f)",
		r.wall.Seconds(), r.cpu.Seconds(), r.peak, r.after, float64(r.peak)/float64(r.after))
}

// measureLoad starts a server on a free loopback port with start, waits
// for its first answer of origin's SOA, and stops it.
func measureLoad(t *testing.T, start func(t *testing.T, dir, origin, file string, port int) *exec.Cmd, origin, file string) loadRun {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	t0 := time.Now()
	cmd := start(t, dir, origin, file, port)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	c := &dns.Client{Timeout: 20 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(origin, dns.TypeSOA)
	for {
		r, _, err := c.Exchange(q, addr.String())
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			break
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it answered", cmd.Path)
		default:
		}
		if time.Since(t0) > 10*time.Minute {
			t.Fatalf("%s does not answer %s SOA within 10 minutes", cmd.Path, origin)
		}
		if err != nil && !strings.Contains(err.Error(), "timeout") {
			time.Sleep(20 * time.Millisecond)
		}
	}
	r := loadRun{server: filepath.Base(cmd.Path), wall: time.Since(t0), cpu: procCPU(t, cmd.Process.Pid)}
	r.peak = int(testenv.ProcStatusKiB(t, cmd.Process.Pid, "VmHWM")[0] >> 10)
	time.Sleep(time.Second)
	r.after = int(testenv.ProcStatusKiB(t, cmd.Process.Pid, "VmRSS")[0] >> 10)
	return r
}

func startRingdnsLoad(t *testing.T, dir, origin, file string, port int) *exec.Cmd {
	conf := writeRingdnsConf(t, dir, fmt.Sprintf("[[zone]]\norigin = %q\nfile = %q\n", origin, file))
	cmd := exec.Command(ringdnsBin, "-config", conf, "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-control", filepath.Join(dir, "control.sock"))
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// startKnotLoad starts knotd with the zone from file, as the benchmarks
// run it: no journal, no semantic checks, nothing written back.
func startKnotLoad(t *testing.T, dir, origin, file string, port int) *exec.Cmd {
	conf := filepath.Join(dir, "knot.conf")
	text := fmt.Sprintf(`server:
    listen: 127.0.0.1@%d
    rundir: %[2]s
database:
    storage: %[2]s
template:
  - id: default
    storage: %[2]s
    semantic-checks: off
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: %s
    file: %s
log:
  - target: stderr
    any: warning
`, port, dir, origin, file)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("knotd", "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// signBigTLD signs the zone in file with NSEC3 (opt-out, no salt, no
// extra iterations) and fresh ECDSA P-256 keys by ldns-signzone, as the
// benchmarks sign theirs, and returns the signed file.
func signBigTLD(t *testing.T, dir, origin, file string) string {
	t.Helper()
	keygen := func(args ...string) string {
		cmd := exec.Command("ldns-keygen", append(args, origin)...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ldns-keygen (Debian package ldnsutils): %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	ksk, zsk := keygen("-a", "ECDSAP256SHA256", "-k"), keygen("-a", "ECDSAP256SHA256")
	out := file + ".signed"
	cmd := exec.Command("ldns-signzone", "-n", "-p", "-t", "0", "-f", out, file, ksk, zsk)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldns-signzone: %v: %s", err, b)
	}
	return out
}
