package e2e

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/loadgen"
	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
)

// rootAXFRRecords is the number of records an AXFR of the root zone
// fixture carries: its 22,772 records and the SOA again at the end.
const rootAXFRRecords = 22772 + 1

// xfrLoadQueries is the query file of TestXfrOutUnderLoad: names the root
// zone answers with referrals, its apex data and NXDOMAIN.
const xfrLoadQueries = `; root mix for the transfer-under-load measurement
. SOA
com. NS
net. A
. NS E
nx-ringdns-test. A
org. DS D
`

// TestXfrOutUnderLoad measures issue 13's "the packet path does not
// notice": answers per second of the AF_XDP workers at saturation
// (ringperf flat out, both queues) with and without AXFRs of the root zone
// running back to back over TCP from the client namespace, in alternating
// rounds. RINGDNS_XFRLOAD_RATE sets server.transfers-out-rate (bytes per
// second; none by default). It is a measurement, run with RINGDNS_XFRLOAD=1 (a minute); it
// fails only when a transfer or ringperf fails, and logs the rates and
// their ratio.
func TestXfrOutUnderLoad(t *testing.T) {
	if os.Getenv("RINGDNS_XFRLOAD") == "" {
		t.Skip("a measurement of about a minute: set RINGDNS_XFRLOAD=1")
	}
	netnstest.Require(t)
	n := newXDPNet(t)
	dir := t.TempDir()
	root, err := filepath.Abs(filepath.Join(repoRoot, "zone", "testdata", "root.zone"))
	if err != nil {
		t.Fatal(err)
	}
	control := filepath.Join(dir, "control.sock")
	rate := os.Getenv("RINGDNS_XFRLOAD_RATE")
	if rate == "" {
		rate = "0"
	}
	conf := fmt.Sprintf(`[server]
listen = ["%s:53"]
control = %q
transfers-out-rate = %s

[[zone]]
origin = "."
file = %q
allow-transfer = ["198.18.0.0/15"]

[xdp]
mode = "driver"
`, netns.ServerV4, control, rate, root)
	confFile := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, control: control, out: &syncBuffer{}, exited: make(chan struct{})}
	d.run(netns.Command(n.ServerNS, ringdnsBin, "-config", confFile, "-xdp", n.ServerIf), nil)
	qf := filepath.Join(dir, "queries.txt")
	if err := os.WriteFile(qf, []byte(xfrLoadQueries), 0o644); err != nil {
		t.Fatal(err)
	}

	// axfr transfers the root zone once from the client namespace and
	// returns the records it received, counted from the messages' headers
	// (ANCOUNT) without unpacking them: the client shares the machine's
	// two CPUs with the server and ringperf, and unpacking 22,773 records
	// a transfer would weigh on the measurement as much as the server's
	// work does.
	server := net.JoinHostPort(netns.ServerV4, "53")
	query := new(dns.Msg)
	query.SetAxfr(".")
	wire, err := query.Pack()
	if err != nil {
		t.Fatal(err)
	}
	axfr := func() (int, error) {
		var c net.Conn
		if err := netns.Do(n.ClientNS, func() error {
			var err error
			c, err = net.DialTimeout("tcp", server, 5*time.Second)
			return err
		}); err != nil {
			return 0, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(append([]byte{byte(len(wire) >> 8), byte(len(wire))}, wire...)); err != nil {
			return 0, err
		}
		r := bufio.NewReaderSize(c, 1<<16)
		buf := make([]byte, 65535)
		// The transfer is over when the records counted reach the
		// root zone's and its closing SOA: ringdns then sends nothing more.
		records := 0
		for records < rootAXFRRecords {
			if _, err := io.ReadFull(r, buf[:2]); err != nil {
				return records, err
			}
			l := int(binary.BigEndian.Uint16(buf))
			if l < 12 {
				return records, fmt.Errorf("a message of %d bytes", l)
			}
			if _, err := io.ReadFull(r, buf[:l]); err != nil {
				return records, err
			}
			if rcode := buf[3] & 0xf; rcode != 0 {
				return records, fmt.Errorf("rcode %d", rcode)
			}
			records += int(binary.BigEndian.Uint16(buf[6:8]))
		}
		return records, nil
	}
	if got, err := axfr(); err != nil || got != rootAXFRRecords {
		t.Fatalf("AXFR of the root zone: %d records, %v; want 22,773 (the SOA twice)", got, err)
	}

	const rounds, seconds = 3, "4"
	var without, with []float64
	for r := range rounds {
		for _, transfers := range []bool{false, true} {
			var stop atomic.Bool
			var wg sync.WaitGroup
			var done atomic.Int64
			var xerr atomic.Value
			if transfers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						got, err := axfr()
						if err != nil || got != rootAXFRRecords {
							xerr.Store(fmt.Sprintf("%d records, %v", got, err))
							return
						}
						done.Add(1)
					}
				}()
			}
			res, out, code := runRingperfFile(t, n, qf, "-s", netns.ServerV4, "-l", seconds, "-queues", "0,1")
			stop.Store(true)
			wg.Wait()
			if code != 0 {
				t.Fatalf("ringperf: exit status %d\n%s", code, out)
			}
			if e := xerr.Load(); e != nil {
				t.Fatalf("round %d: an AXFR under load failed: %s", r, e)
			}
			if transfers && done.Load() == 0 {
				t.Fatalf("round %d: no AXFR completed during the load", r)
			}
			t.Logf("round %d, transfers %v: %.0f answers/s (%d answered of %d sent in %.1f s), %d AXFRs of the root zone done",
				r, transfers, res.AnsweredQPS, res.Answered, res.Sent, res.Seconds, done.Load())
			if transfers {
				with = append(with, res.AnsweredQPS)
			} else {
				without = append(without, res.AnsweredQPS)
			}
		}
	}
	slices.Sort(without)
	slices.Sort(with)
	t.Logf("answers/s without transfers: median %.0f (%.0f-%.0f); with AXFRs back to back: median %.0f (%.0f-%.0f); ratio of medians %.3f",
		without[rounds/2], without[0], without[rounds-1], with[rounds/2], with[0], with[rounds-1], with[rounds/2]/without[rounds/2])
}

// runRingperfFile runs ringperf in the client namespace with query file qf,
// as runRingperf does with its own mix.
func runRingperfFile(t *testing.T, n *xdpNet, qf string, args ...string) (res loadgen.Result, out string, code int) {
	t.Helper()
	args = append([]string{"-i", n.ClientIf, "-d", qf, "-json"}, args...)
	cmd := netns.Command(n.ClientNS, append([]string{ringperfBin}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code = exitCode(t, "ringperf", cmd.Run())
	out = stdout.String() + stderr.String()
	if code == 0 {
		if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
			t.Fatalf("ringperf -json: %v\n%s", err, out)
		}
	}
	return res, out, code
}
