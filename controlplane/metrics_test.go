package controlplane

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startServer runs a Server on cfg until the test ends.
func startServer(t *testing.T, cfg *Config) *Server {
	t.Helper()
	s, err := NewServer(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run() }()
	t.Cleanup(func() {
		s.Shutdown()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

// httpGet asks GET path on c, a connection kept alive, and reads the
// reply.
func httpGet(t *testing.T, c net.Conn, r *bufio.Reader, path string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: ringdns\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	c.SetDeadline(time.Time{})
}

// tcpQuery asks the SOA of origin over a new TCP connection to addr.
func tcpQuery(t *testing.T, addr, origin string) {
	t.Helper()
	c, err := dns.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := new(dns.Msg)
	q.SetQuestion(origin, dns.TypeSOA)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	r, err := c.ReadMsg()
	if err != nil || r.Id != q.Id || len(r.Answer) != 1 {
		t.Fatalf("SOA over TCP: %v, %v", r, err)
	}
}

// isClosed reports whether the server has closed c, waiting up to limit.
func isClosed(c net.Conn, limit time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.ReadAll(c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestMetricsConnectionBound keeps three times the metrics endpoint's
// bound of connections open and idle, after a request each as Prometheus
// leaves them: the bound holds, the connections idle longest are closed to
// make room, and DNS over TCP and a new scrape are still served.
func TestMetricsConnectionBound(t *testing.T) {
	cfg := serverConfig(t, "127.0.0.1:0")
	cfg.Server.Metrics = "127.0.0.1:0"
	s := startServer(t, cfg)
	ml := s.metLn.(*metricsListener)
	bound := ml.lim.max
	if bound != defaultMetricsLimits.maxConns {
		// The test process has descriptors enough for the default.
		t.Errorf("metrics bound %d, want the default %d", bound, defaultMetricsLimits.maxConns)
		bound = defaultMetricsLimits.maxConns
	}
	var conns []net.Conn
	for i := 0; i < 3*bound; i++ {
		c, err := net.DialTimeout("tcp", s.MetricsAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		httpGet(t, c, bufio.NewReader(c), "/metrics")
		conns = append(conns, c)
	}
	if n := ml.conns.open(); n > bound {
		t.Errorf("%d metrics connections open, bound %d", n, bound)
	}
	tcpQuery(t, s.Listen()[0].String(), "example.")
	// A new scrape takes an idle connection's place.
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatalf("scrape with the bound full of idle connections: %v", err)
	}
	resp.Body.Close()
	hc.CloseIdleConnections()

	// Each connection over the bound closed one idle before it; the
	// newest are still open (their idle timeout is far off).
	closed := 0
	for _, c := range conns {
		if isClosed(c, 100*time.Millisecond) {
			closed++
		}
	}
	if want := len(conns) - bound + 1; closed != want {
		t.Errorf("%d of %d flooding connections closed, want %d (all but the bound, less the scrape's)", closed, len(conns), want)
	}
}

// TestMetricsTimeouts checks that the metrics endpoint closes a connection
// idle after its request, a silent one and one whose header stalls, each
// after its timeout.
func TestMetricsTimeouts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Short timeouts for the waits tested, each at least ten times what
	// serving the tiny reply takes on a loaded machine and far below the
	// test's waits; the others longer than the test, so that none stands
	// in for another.
	lim := metricsLimits{maxConns: 8, readHeader: 300 * time.Millisecond, read: time.Minute, write: time.Minute,
		idle: 500 * time.Millisecond}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mln, srv := serveMetrics(ln, h, lim, quietLog())
	go srv.Serve(mln)
	t.Cleanup(func() { srv.Close() })
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for _, c := range []struct {
		name string
		send func(net.Conn)
		min  time.Duration
	}{
		{"idle after a request", func(c net.Conn) { httpGet(t, c, bufio.NewReader(c), "/") }, lim.idle / 2},
		{"silent", func(net.Conn) {}, lim.readHeader / 2},
		{"stalled header", func(c net.Conn) { io.WriteString(c, "GET / HTTP/1.1\r\nHost: ") }, lim.readHeader / 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dial()
			c.send(conn)
			start := time.Now()
			if !isClosed(conn, 10*time.Second) {
				t.Fatal("still open after 10 s")
			}
			if d := time.Since(start); d < c.min {
				t.Errorf("closed after %v, before its timeout", d)
			}
		})
	}
}

// failingListener fails Accept n times with EMFILE, as a process out of
// descriptors does, then reports itself closed.
type failingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return nil, net.ErrClosed
}

func (l *failingListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }

// countingHandler counts the records logged.
type countingHandler struct {
	slog.Handler
	n atomic.Int32
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}

// TestAcceptFailuresLogLimited fails accept 200 times in a row: the loop
// warns once, not per failure, and backs off instead of spinning.
func TestAcceptFailuresLogLimited(t *testing.T) {
	ln := &failingListener{}
	ln.n.Store(200)
	h := &countingHandler{}
	var set connSet
	// Pauses of a microsecond keep the test short; the warning period is
	// longer than the test.
	set.retry = acceptRetry{min: time.Microsecond, max: time.Microsecond, every: time.Hour}
	set.acceptLoop(ln, 4, slog.New(h), func(net.Conn) { t.Error("served a connection") }, nil)
	if n := h.n.Load(); n != 1 {
		t.Errorf("%d warnings for 200 failed accepts, want 1", n)
	}

	// The pause doubles from the shortest to the longest.
	r := acceptRetry{min: time.Microsecond, max: 8 * time.Microsecond, every: time.Hour}
	var pauses []time.Duration
	for i := 0; i < 5; i++ {
		r.failed(slog.New(h), ln, syscall.EMFILE)
		pauses = append(pauses, r.pause)
	}
	want := []time.Duration{1000, 2000, 4000, 8000, 8000}
	for i := range want {
		if pauses[i] != want[i] {
			t.Fatalf("pauses %v, want %v", pauses, want)
		}
	}
	r.succeeded()
	if r.failed(slog.New(h), ln, syscall.EMFILE); r.pause != time.Microsecond {
		t.Errorf("pause after a success and a failure: %v, want the shortest", r.pause)
	}
}

// TestMetricsErrorLogLimited checks that what net/http logs about clients
// reaches the log at most once per period.
func TestMetricsErrorLogLimited(t *testing.T) {
	h := &countingHandler{}
	lh := &limitedHandler{Handler: h, every: time.Hour}
	l := slog.NewLogLogger(lh, slog.LevelWarn)
	for i := 0; i < 100; i++ {
		l.Print("http: superfluous response.WriteHeader call")
	}
	if n := h.n.Load(); n != 1 {
		t.Errorf("%d records of 100 passed, want 1", n)
	}
}
