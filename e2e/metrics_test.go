package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// scrape fetches the metrics page and returns each sample line's value by
// its name with labels, exactly as written on the page.
func scrape(t *testing.T, addr string) (map[string]float64, http.Header) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v\n%s", resp.Status, err, body)
	}
	return parseMetrics(t, string(body)), resp.Header
}

// parseMetrics returns each sample line's value of a metrics page in
// Prometheus text format by its name with labels, exactly as written.
func parseMetrics(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sumMetric adds the samples of one metric whose labels contain every
// given label pair.
func sumMetric(m map[string]float64, name string, labels ...string) (float64, int) {
	var sum float64
	n := 0
next:
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(k, l) {
				continue next
			}
		}
		sum += v
		n++
	}
	return sum, n
}

// TestMetrics serves Prometheus metrics and checks that they count the
// queries sent.
func TestMetrics(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "-zone", "example.="+exampleZone(), "-metrics", "127.0.0.1:0")
	if d.status.Metrics == "" || strings.HasSuffix(d.status.Metrics, ":0") {
		t.Fatalf("status reports metrics address %q, want the resolved one", d.status.Metrics)
	}
	const udp, tcp, nx = 7, 3, 2
	for i := 0; i < udp; i++ {
		mustExchange(t, d.addr(i%2 == 0), false, "www.example.", dns.TypeA)
	}
	for i := 0; i < tcp; i++ {
		mustExchange(t, d.addr(i%2 == 0), true, "www.example.", dns.TypeAAAA)
	}
	for i := 0; i < nx; i++ {
		mustExchange(t, d.addr(false), false, "nothing.example.", dns.TypeA)
	}
	m, h := scrape(t, d.status.Metrics)
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ringdns_queries_total", nil, udp + tcp + nx},
		{"ringdns_queries_total", []string{`worker="tcp`}, tcp},
		{"ringdns_replies_total", []string{`rcode="NOERROR"`}, udp + tcp},
		{"ringdns_replies_total", []string{`rcode="NXDOMAIN"`}, nx},
		{"ringdns_replies_total", []string{`rcode="SERVFAIL"`}, 0},
		{"ringdns_answers_total", []string{`kind="nxdomain"`}, nx},
		{"ringdns_zone_serial", []string{`zone="example."`}, 2026112501},
		{"ringdns_zone_serving", []string{`zone="example."`}, 1},
		{"ringdns_zone_records", []string{`zone="example."`}, 21},
		{"ringdns_reloads_total", nil, 1},
		{"ringdns_reload_failures_total", nil, 0},
		{"ringdns_tcp_connections_total", []string{`result="accepted"`}, tcp},
		{"ringdns_tcp_connections_total", []string{`result="per-source"`}, 0},
		{"ringdns_tcp_connections_total", []string{`result="evicted"`}, 0},
		{"ringdns_worker_info", []string{`kind="tcp"`}, 2},
		{"ringdns_worker_info", []string{`kind="udp"`}, float64(d.status.Workers)},
	} {
		got, n := sumMetric(m, c.name, c.labels...)
		if n == 0 || got != c.want {
			t.Errorf("%s%v: %v over %d samples, want %v", c.name, c.labels, got, n, c.want)
		}
	}
	for _, name := range []string{"ringdns_reload_swap_seconds", "ringdns_reply_bytes_total", "go_goroutines",
		"process_resident_memory_bytes"} {
		if _, n := sumMetric(m, name); n == 0 {
			t.Errorf("metric %s missing", name)
		}
	}
	// Counters move between scrapes.
	mustExchange(t, d.addr(true), false, "www.example.", dns.TypeA)
	m2, _ := scrape(t, d.status.Metrics)
	before, _ := sumMetric(m, "ringdns_queries_total")
	after, _ := sumMetric(m2, "ringdns_queries_total")
	if after != before+1 {
		t.Errorf("queries_total went from %v to %v after one query", before, after)
	}
	d.alive()
}

// TestMetricsFloodKeepsDNS runs the daemon with few file descriptors and
// opens connections to the metrics endpoint, each kept alive after a
// scrape as Prometheus keeps its own, until there are more of them than
// the process could hold: DNS over TCP, the control socket and a new
// scrape are served all along, the endpoint closes the connections over
// its bound, and the log says so at most a few times.
func TestMetricsFloodKeepsDNS(t *testing.T) {
	t.Parallel()
	// 200 descriptors: the sockets, 8 TCP connections, the control socket
	// and the spare descriptors fit, with some left for the metrics
	// endpoint. The flood asks for more than all of them.
	const nofile, flood = 200, 300
	conf := filepath.Join(t.TempDir(), "flood.toml")
	writeFileAtomic(t, conf, fmt.Sprintf("[server]\ntcp-max-connections = 8\n[[zone]]\norigin = \"example.\"\nfile = %q\n", exampleZone()))
	d := &daemon{t: t, dir: t.TempDir(), out: &syncBuffer{}, exited: make(chan struct{})}
	d.control = filepath.Join(d.dir, "control.sock")
	args := []string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), ringdnsBin,
		"-config", conf, "-listen", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-control", d.control}
	d.run(exec.Command("sh", args...), []string{"XDG_RUNTIME_DIR=" + d.dir})
	if !strings.Contains(d.out.String(), "rlimit_nofile="+fmt.Sprint(nofile)) {
		t.Errorf("the daemon did not log its descriptor budget under RLIMIT_NOFILE %d", nofile)
	}

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		c, err := net.DialTimeout("tcp", d.status.Metrics, queryTimeout)
		if err != nil {
			t.Fatalf("connection %d to the metrics endpoint: %v", i, err)
		}
		conns = append(conns, c)
		// A daemon out of descriptors leaves the connection in its listen
		// queue, unanswered: the flood has done its worst, and DNS is
		// checked below.
		c.SetDeadline(time.Now().Add(queryTimeout))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: ringdns\r\n\r\n"); err != nil {
			t.Logf("scrape %d: %v", i, err)
			break
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Logf("scrape %d: %v", i, err)
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// DNS over TCP, the control socket and the endpoint itself answer.
	if err := exampleCases[0].check(mustExchange(t, d.addr(false), true, "example.", dns.TypeSOA)); err != nil {
		t.Error(err)
	}
	if out, code := d.ringctl("status"); code != 0 {
		t.Errorf("ringctl status during the flood: exit %d\n%s", code, out)
	}
	m, _ := scrape(t, d.status.Metrics)
	if _, n := sumMetric(m, "ringdns_queries_total"); n == 0 {
		t.Error("scrape during the flood: no ringdns_queries_total")
	}
	// All but the newest connections were closed to make room.
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++
		}
	}
	if closed < flood-32 {
		t.Errorf("%d of %d flooding connections closed; the endpoint's bound is at most 16", closed, flood)
	}
	if n := strings.Count(d.out.String(), "accepting connections failed"); n > 2 {
		t.Errorf("the log warns %d times of failed accepts", n)
	}
	d.alive()
}
