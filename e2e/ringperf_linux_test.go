//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/internal/loadgen"
	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
)

// ringperfQueries is a query file with a known mix: a quarter NXDOMAIN, a
// line with EDNS and one with DO.
const ringperfQueries = `; ringperf's e2e mix
www.e2e.test. A
nx.e2e.test. A
e2e.test. SOA E
www.e2e.test. AAAA D
`

// runRingperf runs ringperf in the client namespace and returns its
// result, its output and its exit status.
func runRingperf(t *testing.T, n *xdpNet, args ...string) (loadgen.Result, string, int) {
	t.Helper()
	qf := filepath.Join(t.TempDir(), "queries.txt")
	if err := os.WriteFile(qf, []byte(ringperfQueries), 0o644); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"-i", n.ClientIf, "-d", qf, "-json"}, args...)
	cmd := netns.Command(n.ClientNS, append([]string{ringperfBin}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := exitCode(t, "ringperf", err)
	out := stdout.String() + stderr.String()
	var res loadgen.Result
	if code == 0 {
		if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
			t.Fatalf("ringperf -json: %v\n%s", err, out)
		}
	}
	if link := netnstest.Run(t, "ip", "-n", n.ClientNS, "link", "show", "dev", n.ClientIf); strings.Contains(link, "xdp") {
		t.Errorf("ringperf left an XDP program on %s:\n%s", n.ClientIf, link)
	}
	return res, out, code
}

// checkMix checks a run of the mix: every query answered (the rate is far
// below what either side can carry, so none may be lost), a quarter of
// them NXDOMAIN, no truncation, and sane latencies.
func checkMix(t *testing.T, res loadgen.Result, out string, sent uint64) {
	t.Helper()
	if res.Sent != sent || res.Answered != sent || res.Lost != 0 || res.Unmatched != 0 || res.Malformed != 0 {
		t.Errorf("sent %d answered %d lost %d unmatched %d malformed %d, want %d sent and answered\n%s",
			res.Sent, res.Answered, res.Lost, res.Unmatched, res.Malformed, sent, out)
	}
	if nx := res.Rcodes["NXDOMAIN"]; nx != res.Answered/4 || res.Rcodes["NOERROR"] != res.Answered-nx {
		t.Errorf("rcodes %v, want a quarter of %d NXDOMAIN and the rest NOERROR", res.Rcodes, res.Answered)
	}
	if res.Truncated != 0 || res.ReplyBytes < 40*res.Answered {
		t.Errorf("truncated %d, reply bytes %d for %d replies", res.Truncated, res.ReplyBytes, res.Answered)
	}
	l := res.Latency
	if !(l.Min > 0 && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latency %+v is not ordered", l)
	}
}

// TestRingperf drives the AF_XDP daemon with ringperf over both families
// and both queues of the veth pair, then a socket daemon whose replies the
// kernel may send back on either queue.
func TestRingperf(t *testing.T) {
	netnstest.Require(t)
	n := newXDPNet(t)
	startXDPDaemon(t, n, "driver")

	for _, server := range []string{netns.ServerV4, netns.ServerV6} {
		t.Run(server, func(t *testing.T) {
			res, out, code := runRingperf(t, n, "-s", server, "-n", "4000", "-rate", "20000", "-l", "30", "-queues", "0,1")
			if code != 0 {
				t.Fatalf("ringperf: exit status %d\n%s", code, out)
			}
			checkMix(t, res, out, 4000)
			if len(res.Queues) != 2 || res.Queues[0].Sent != 2000 || res.Queues[1].Sent != 2000 {
				t.Errorf("queues %+v, want 2000 sent from each", res.Queues)
			}
			// On veth a frame sent on queue i arrives on the peer's queue
			// i, and the daemon answers from the queue it received on.
			for _, q := range res.Queues {
				if q.Answered != q.Sent {
					t.Errorf("queue %d: sent %d, answered on it %d", q.Queue, q.Sent, q.Answered)
				}
			}
			if !strings.Contains(out, "ringperf:") {
				t.Errorf("no progress on stderr:\n%s", out)
			}
		})
	}

	t.Run("outside the link", func(t *testing.T) {
		_, out, code := runRingperf(t, n, "-s", "198.19.0.1", "-n", "10")
		if code != 1 || !strings.Contains(out, "outside") {
			t.Errorf("exit status %d, want 1 and a refusal of the target:\n%s", code, out)
		}
	})
	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"-s", netns.ServerV4, "-l", "0"}, {"-s", netns.ServerV4, "-do", "2"}, {"-n", "1"}} {
			_, out, code := runRingperf(t, n, args...)
			if code != 2 {
				t.Errorf("ringperf %v: exit status %d, want 2\n%s", args, code, out)
			}
		}
	})
}

// TestRingperfKernelServer drives ringdns's socket workers, which the
// kernel answers through: its replies leave on whichever TX queue the
// kernel picks, so they may arrive on the other client queue than their
// query left from, and must still be matched.
func TestRingperfKernelServer(t *testing.T) {
	netnstest.Require(t)
	n := newXDPNet(t)
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "e2e.test.zone")
	if err := os.WriteFile(zoneFile, []byte(xdpZone), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, control: filepath.Join(dir, "control.sock"), out: &syncBuffer{}, exited: make(chan struct{})}
	d.run(netns.Command(n.ServerNS, ringdnsBin, "-zone", "e2e.test.="+zoneFile, "-control", d.control,
		"-listen", fmt.Sprintf("%s:5300", netns.ServerV4)), nil)
	res, out, code := runRingperf(t, n, "-s", netns.ServerV4, "-p", "5300", "-n", "3000", "-rate", "10000", "-l", "30")
	if code != 0 {
		t.Fatalf("ringperf: exit status %d\n%s", code, out)
	}
	checkMix(t, res, out, 3000)
	if len(res.Queues) != 2 {
		t.Errorf("queues %+v: want both queues of the interface by default", res.Queues)
	}
}
