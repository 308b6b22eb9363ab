package controlplane

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
)

// echoHandler answers every request with its own command, and panics on
// "boom" to show that a handler panic does not take the daemon down.
type echoHandler struct{}

func (echoHandler) HandleControl(r control.Request) control.Reply {
	if r.Cmd == "boom" {
		panic("boom")
	}
	return control.OKReply(r)
}

func startControl(t *testing.T, h ControlHandler) *ControlServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.sock")
	s, err := ListenControl(path, h, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestControlProtocol(t *testing.T) {
	s := startControl(t, echoHandler{})
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode = %v, want a socket with 0600", fi.Mode())
	}

	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for _, tc := range []struct {
		name, line string
		ok         bool
		want       string // in the error, or the echoed command
	}{
		{"status", `{"cmd":"status"}`, true, "status"},
		{"reload with zones", `{"cmd":"reload","zones":["a.","b."]}`, true, "reload"},
		{"garbage", `hello`, false, "bad request"},
		{"binary", "\x00\x01\x02\xff", false, "bad request"},
		{"unknown field", `{"cmd":"status","x":1}`, false, "unknown field"},
		{"two objects", `{"cmd":"status"}{"cmd":"zones"}`, false, "one JSON object"},
		{"wrong type", `{"cmd":7}`, false, "bad request"},
		{"array", `[1,2]`, false, "bad request"},
		{"panicking handler", `{"cmd":"boom"}`, false, "internal error"},
		{"still fine afterwards", `{"cmd":"stats"}`, true, "stats"},
	} {
		if _, err := conn.Write([]byte(tc.line + "\n")); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("%s: read: %v", tc.name, err)
		}
		var rep control.Reply
		if err := json.Unmarshal(line, &rep); err != nil {
			t.Fatalf("%s: reply %q: %v", tc.name, line, err)
		}
		if rep.OK != tc.ok {
			t.Errorf("%s: ok = %v (%s), want %v", tc.name, rep.OK, rep.Error, tc.ok)
		}
		if tc.ok {
			var echoed control.Request
			if err := json.Unmarshal(rep.Data, &echoed); err != nil || echoed.Cmd != tc.want {
				t.Errorf("%s: echoed %s, %v", tc.name, rep.Data, err)
			}
		} else if !strings.Contains(rep.Error, tc.want) {
			t.Errorf("%s: error %q does not contain %q", tc.name, rep.Error, tc.want)
		}
	}
}

func TestControlOversizedRequest(t *testing.T) {
	s := startControl(t, echoHandler{})
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server stops reading after the bound, so the write may fail;
	// what matters is the reply and the closed connection.
	go conn.Write([]byte(strings.Repeat("x", control.MaxRequest+10) + "\n"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var rep control.Reply
	if err := json.Unmarshal(line, &rep); err != nil || rep.OK || !strings.Contains(rep.Error, "longer than") {
		t.Errorf("reply %q, %v", line, err)
	}
	if _, err := r.ReadBytes('\n'); err == nil {
		t.Error("connection still open after an oversized request")
	}

	// The server still serves new connections.
	c, err := control.Dial(s.Path(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var echoed control.Request
	if rep, err := c.Do(control.Request{Cmd: "zones"}, &echoed); err != nil || !rep.OK || echoed.Cmd != "zones" {
		t.Errorf("Do = %+v, %v, %+v", rep, err, echoed)
	}
}

// TestControlRequestLimit checks both sides of the bound: a request of
// exactly control.MaxRequest bytes, newline included, is served, and a client
// that sends more without a newline is refused as soon as the bound is
// passed, not when it finally sends a newline or falls idle.
func TestControlRequestLimit(t *testing.T) {
	s := startControl(t, echoHandler{})
	conn, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := `{"cmd":"status"}`
	req += strings.Repeat(" ", control.MaxRequest-1-len(req)) + "\n"
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	go conn.Write([]byte(req))
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	var rep control.Reply
	if err != nil || json.Unmarshal(line, &rep) != nil || !rep.OK {
		t.Fatalf("request of exactly %d bytes: reply %q, %v", control.MaxRequest, line, err)
	}

	// No newline, and the client keeps the connection open.
	go conn.Write([]byte(strings.Repeat("x", control.MaxRequest+10)))
	line, err = r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("no reply to an unterminated oversized request: %v", err)
	}
	if err := json.Unmarshal(line, &rep); err != nil || rep.OK || !strings.Contains(rep.Error, "longer than") {
		t.Errorf("reply %q, %v", line, err)
	}
}

func TestControlSocketLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.sock")

	// A stale socket file (nobody listening) is replaced.
	staleSocket(t, path)
	s, err := ListenControl(path, echoHandler{}, quietLog())
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}

	// A live socket is not stolen.
	if s2, err := ListenControl(path, echoHandler{}, quietLog()); err == nil {
		s2.Close()
		t.Error("a second server took over a live control socket")
	}

	// An idle client does not keep Close waiting, and Close removes the file.
	idle, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited on an idle client")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file still there after Close: %v", err)
	}
}

func TestHandleControlCommands(t *testing.T) {
	cat, _ := newTestCatalog(t, "a.test.", zoneText("a.test.", 1))
	if _, err := cat.Load(); err != nil {
		t.Fatal(err)
	}
	s := &Server{Catalog: cat}
	for _, tc := range []struct {
		req  control.Request
		ok   bool
		want string
	}{
		{control.Request{Cmd: "zones"}, true, `"origin":"a.test."`},
		{control.Request{Cmd: "reload"}, true, `"status":"unchanged"`},
		{control.Request{Cmd: "reload", Zones: []string{"a.test"}}, true, `"status":"unchanged"`},
		{control.Request{Cmd: "reload", Zones: []string{"b.test"}}, false, "zone not configured: b.test."},
		{control.Request{Cmd: "zones", Zones: []string{"x"}}, false, "takes no zones"},
		{control.Request{Cmd: ""}, false, "missing cmd"},
		{control.Request{Cmd: "shutdown"}, false, "unknown command"},
	} {
		rep := s.HandleControl(tc.req)
		got := rep.Error + string(rep.Data)
		if rep.OK != tc.ok || !strings.Contains(got, tc.want) {
			t.Errorf("%+v: ok %v, %s; want ok %v and %q", tc.req, rep.OK, got, tc.ok, tc.want)
		}
	}
}

// TestControlCloseRacesNewConnection closes the server right after a client
// connected, before the connection's goroutine may have set its first read
// deadline: Close must still return promptly instead of waiting out the
// idle timeout of a connection whose deadline it could not shorten.
func TestControlCloseRacesNewConnection(t *testing.T) {
	for i := 0; i < 50; i++ {
		path := filepath.Join(t.TempDir(), "c.sock")
		s, err := ListenControl(path, echoHandler{}, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			s.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Close still waiting after 5 s with a fresh connection open", i)
		}
		c.Close()
	}
}

// TestControlRefusesWhatIsNotAStaleSocket checks that ListenControl removes
// only a socket file nobody listens on: anything else at the path (a file
// the operator mistyped -control onto, a directory, a symbolic link, a live
// socket) is left alone and named in the error.
func TestControlRefusesWhatIsNotAStaleSocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		want string // in the error
	}{
		{"regular file", func(t *testing.T, path string) {
			writeFile(t, path, "precious data\n")
		}, "is a regular file"},
		{"empty file", func(t *testing.T, path string) {
			writeFile(t, path, "")
		}, "is a regular file"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "is a directory"},
		{"symbolic link to a file", func(t *testing.T, path string) {
			target := path + ".target"
			writeFile(t, target, "precious data\n")
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
		{"dangling symbolic link", func(t *testing.T, path string) {
			if err := os.Symlink(path+".nowhere", path); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
		{"symbolic link to a stale socket", func(t *testing.T, path string) {
			target := path + ".target"
			staleSocket(t, target)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
		{"named pipe", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is a named pipe"},
		{"live socket", func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}, "something is listening on it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.sock")
			tc.make(t, path)
			before, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ListenControl(path, echoHandler{}, quietLog())
			if err == nil {
				s.Close()
				t.Fatalf("ListenControl took over the path")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s and say %q", err, path, tc.want)
			}
			after, err := os.Lstat(path)
			if err != nil {
				t.Fatalf("the %s is gone: %v", tc.name, err)
			}
			if !os.SameFile(before, after) || before.Mode() != after.Mode() || before.Size() != after.Size() {
				t.Errorf("the %s was changed: %v %d, now %v %d", tc.name, before.Mode(), before.Size(), after.Mode(), after.Size())
			}
		})
	}
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// daemon killed with SIGKILL does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
}

// openIdle opens n control connections and waits until the server counts
// them all. Connections with an odd index send one request and read its
// reply first, so both kinds of idle connection are held: one that never
// spoke and one waiting between requests.
func openIdle(t *testing.T, s *ControlServer, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if i%2 == 1 {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte(`{"cmd":"status"}` + "\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := bufio.NewReader(c).ReadBytes('\n'); err != nil {
				t.Fatalf("idle connection %d: no reply: %v", i, err)
			}
		}
		conns = append(conns, c)
	}
	// The connections are counted when their goroutines start; 10 s is
	// far more than that takes even on a loaded machine.
	deadline := time.Now().Add(10 * time.Second)
	for s.conns.open() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the server counts %d of %d connections after 10 s", s.conns.open(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return conns
}

// TestControlIdleConnectionsDoNotLockOut fills the control socket's
// connection bound with idle connections: a client must still get its
// request through at once, not after an idle timeout. The timeout given to
// the client (10 s) is only there so that a failure does not hang; the
// server is expected to answer in milliseconds.
func TestControlIdleConnectionsDoNotLockOut(t *testing.T) {
	s := startControl(t, echoHandler{})
	openIdle(t, s, maxControlConns)
	for i := 0; i < 3; i++ {
		c, err := control.Dial(s.Path(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var echoed control.Request
		rep, err := c.Do(control.Request{Cmd: "status"}, &echoed)
		c.Close()
		if err != nil || !rep.OK || echoed.Cmd != "status" {
			t.Fatalf("client %d with %d idle connections open: %+v, %v", i, maxControlConns, rep, err)
		}
	}
}

// blockingHandler holds every "block" request until release is closed,
// and tells entered when it starts holding one.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
}

func (h blockingHandler) HandleControl(r control.Request) control.Reply {
	if r.Cmd == "block" {
		h.entered <- struct{}{}
		<-h.release
	}
	return control.OKReply(r)
}

// TestControlAllBusyRefusedWithReason fills the bound with connections
// that are all carrying out requests: none can be dropped, so a new client
// is refused, and the client says why instead of "broken pipe".
func TestControlAllBusyRefusedWithReason(t *testing.T) {
	h := blockingHandler{entered: make(chan struct{}), release: make(chan struct{})}
	s := startControl(t, h)
	released := false
	release := func() {
		if !released {
			close(h.release)
			released = true
		}
	}
	defer release()
	var busy []net.Conn
	for i := 0; i < maxControlConns; i++ {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		busy = append(busy, c)
		if _, err := c.Write([]byte(`{"cmd":"block"}` + "\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-h.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d not being carried out after 10 s", i)
		}
	}
	c, err := control.Dial(s.Path(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := c.Do(control.Request{Cmd: "status"}, nil)
	if err == nil || !strings.Contains(err.Error(), "too many control connections") ||
		!strings.Contains(err.Error(), fmt.Sprint(maxControlConns)) {
		t.Errorf("client over the bound with every connection busy: %+v, %v; want an error saying too many control connections (limit %d)",
			rep, err, maxControlConns)
	}

	// Once the requests are done, clients get through again. Done means
	// answered: each busy client reads its reply first. The server marks
	// a connection idle just after writing its reply, so a newcomer may
	// still find every one busy for an instant; it tries again within a
	// bound of 10 s, and the test fails only if it never gets through.
	release()
	for i, c := range busy {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatalf("busy request %d: no reply after the release: %v", i, err)
		}
	}
	var last control.Reply
	ok := poll(10*time.Second, func() bool {
		c2, err := control.Dial(s.Path(), 10*time.Second)
		if err != nil {
			return false
		}
		defer c2.Close()
		last, err = c2.Do(control.Request{Cmd: "status"}, nil)
		return err == nil && last.OK
	})
	if !ok {
		t.Errorf("no client got through within 10 s after the busy requests were answered; last reply %+v", last)
	}
}

// TestControlFirstRequestTimeout checks that a connection that sends no
// request is closed after the first-request timeout, shortened here to
// 200 ms, while one that has sent a request may wait longer for its next.
// The 10 s deadlines only keep a failure from hanging.
func TestControlFirstRequestTimeout(t *testing.T) {
	old := controlFirstRequestTimeout
	controlFirstRequestTimeout = 200 * time.Millisecond
	t.Cleanup(func() { controlFirstRequestTimeout = old })
	s := startControl(t, echoHandler{})

	silent, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	talker, err := control.Dial(s.Path(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	if rep, err := talker.Do(control.Request{Cmd: "status"}, nil); err != nil || !rep.OK {
		t.Fatalf("first request: %+v, %v", rep, err)
	}

	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("silent connection: read %d bytes, %v; want it closed by the server", n, err)
	}
	// The silent connection was closed after the first-request timeout,
	// so the talker has now waited longer than that for its next request.
	if rep, err := talker.Do(control.Request{Cmd: "zones"}, nil); err != nil || !rep.OK {
		t.Errorf("second request after %v: %+v, %v", controlFirstRequestTimeout, rep, err)
	}
}

// TestControlRequestTimeout checks that a request begun and never finished
// is cut off after the request timeout, shortened here to 200 ms, even
// between requests, where an idle client may wait a minute: a connection
// in the middle of a request is not idle, so a newcomer cannot take its
// place. The 10 s deadline only keeps a failure from hanging.
func TestControlRequestTimeout(t *testing.T) {
	old := controlRequestTimeout
	controlRequestTimeout = 200 * time.Millisecond
	t.Cleanup(func() { controlRequestTimeout = old })
	s := startControl(t, echoHandler{})
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte(`{"cmd":"status"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadBytes('\n'); err != nil {
		t.Fatalf("first request: %v", err)
	}
	if _, err := c.Write([]byte(`{"cmd":`)); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadBytes('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("read %q, %v; want the half-sent request cut off", line, err)
	}
}
