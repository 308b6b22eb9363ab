package e2e

import (
	"bufio"
	"io"
	"net/http"
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
