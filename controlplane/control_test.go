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
)

// echoHandler answers every request with its own command, and panics on
// "boom" to show that a handler panic does not take the daemon down.
type echoHandler struct{}

func (echoHandler) HandleControl(r Request) Reply {
	if r.Cmd == "boom" {
		panic("boom")
	}
	return OKReply(r)
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
		var rep Reply
		if err := json.Unmarshal(line, &rep); err != nil {
			t.Fatalf("%s: reply %q: %v", tc.name, line, err)
		}
		if rep.OK != tc.ok {
			t.Errorf("%s: ok = %v (%s), want %v", tc.name, rep.OK, rep.Error, tc.ok)
		}
		if tc.ok {
			var echoed Request
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
	go conn.Write([]byte(strings.Repeat("x", MaxControlRequest+10) + "\n"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var rep Reply
	if err := json.Unmarshal(line, &rep); err != nil || rep.OK || !strings.Contains(rep.Error, "longer than") {
		t.Errorf("reply %q, %v", line, err)
	}
	if _, err := r.ReadBytes('\n'); err == nil {
		t.Error("connection still open after an oversized request")
	}

	// The server still serves new connections.
	c, err := DialControl(s.Path(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var echoed Request
	if rep, err := c.Do(Request{Cmd: "zones"}, &echoed); err != nil || !rep.OK || echoed.Cmd != "zones" {
		t.Errorf("Do = %+v, %v, %+v", rep, err, echoed)
	}
}

// TestControlRequestLimit checks both sides of the bound: a request of
// exactly MaxControlRequest bytes, newline included, is served, and a client
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
	req += strings.Repeat(" ", MaxControlRequest-1-len(req)) + "\n"
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	go conn.Write([]byte(req))
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	var rep Reply
	if err != nil || json.Unmarshal(line, &rep) != nil || !rep.OK {
		t.Fatalf("request of exactly %d bytes: reply %q, %v", MaxControlRequest, line, err)
	}

	// No newline, and the client keeps the connection open.
	go conn.Write([]byte(strings.Repeat("x", MaxControlRequest+10)))
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
		req  Request
		ok   bool
		want string
	}{
		{Request{Cmd: "zones"}, true, `"origin":"a.test."`},
		{Request{Cmd: "reload"}, true, `"status":"unchanged"`},
		{Request{Cmd: "reload", Zones: []string{"a.test"}}, true, `"status":"unchanged"`},
		{Request{Cmd: "reload", Zones: []string{"b.test"}}, false, "zone not configured: b.test."},
		{Request{Cmd: "zones", Zones: []string{"x"}}, false, "takes no zones"},
		{Request{Cmd: ""}, false, "missing cmd"},
		{Request{Cmd: "shutdown"}, false, "unknown command"},
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
		c, err := DialControl(s.Path(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var echoed Request
		rep, err := c.Do(Request{Cmd: "status"}, &echoed)
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

func (h blockingHandler) HandleControl(r Request) Reply {
	if r.Cmd == "block" {
		h.entered <- struct{}{}
		<-h.release
	}
	return OKReply(r)
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
	for i := 0; i < maxControlConns; i++ {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(`{"cmd":"block"}` + "\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-h.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d not being carried out after 10 s", i)
		}
	}
	c, err := DialControl(s.Path(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := c.Do(Request{Cmd: "status"}, nil)
	if err == nil || !strings.Contains(err.Error(), "too many control connections") ||
		!strings.Contains(err.Error(), fmt.Sprint(maxControlConns)) {
		t.Errorf("client over the bound with every connection busy: %+v, %v; want an error saying too many control connections (limit %d)",
			rep, err, maxControlConns)
	}

	// Once the requests are done, clients get through again.
	release()
	c2, err := DialControl(s.Path(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if rep, err := c2.Do(Request{Cmd: "status"}, nil); err != nil || !rep.OK {
		t.Errorf("client after the busy requests ended: %+v, %v", rep, err)
	}
}

// TestControlClientClosedBeforeReply checks what the client says when the
// daemon closes the connection without a reply, which is what it does to a
// connection over its hard bound: the path and the likely reason, not
// "broken pipe" or "EOF".
func TestControlClientClosedBeforeReply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
	}{
		{"closed at once", func(c net.Conn) { c.Close() }},
		{"closed after reading the request", func(c net.Conn) {
			bufio.NewReader(c).ReadBytes('\n')
			c.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.sock")
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					tc.serve(c)
				}
			}()
			c, err := DialControl(path, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Do(Request{Cmd: "status"}, nil)
			if err == nil {
				t.Fatal("Do succeeded without a reply")
			}
			for _, want := range []string{path, "closed the connection before replying", "too many control connections", fmt.Sprint(maxControlConns)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
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
	talker, err := DialControl(s.Path(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	if rep, err := talker.Do(Request{Cmd: "status"}, nil); err != nil || !rep.OK {
		t.Fatalf("first request: %+v, %v", rep, err)
	}

	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("silent connection: read %d bytes, %v; want it closed by the server", n, err)
	}
	// The silent connection was closed after the first-request timeout,
	// so the talker has now waited longer than that for its next request.
	if rep, err := talker.Do(Request{Cmd: "zones"}, nil); err != nil || !rep.OK {
		t.Errorf("second request after %v: %+v, %v", controlFirstRequestTimeout, rep, err)
	}
}

// nobody is the uid the squatting tests give files to.
const nobody = 65534

// requireRoot skips a test that must give files to another user, saying
// why, or fails it under CI=true, where the tests run as root and a skip
// would hide a lost check.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (to chown files to another user), and CI=true forbids skipping it")
	}
	t.Skip("skipping: this test needs root, to chown files to another user")
}

// TestDefaultControlPathPerEnvironment checks the default socket path for each
// environment: $XDG_RUNTIME_DIR when it is an absolute path (the XDG Base
// Directory specification says to ignore a relative one), else a directory
// of ringdns's own, never a name directly in a directory others can write.
func TestDefaultControlPathPerEnvironment(t *testing.T) {
	xdg := t.TempDir()
	own := filepath.Join(os.TempDir(), fmt.Sprintf("ringdns-%d", os.Geteuid()), "ringdns.sock")
	if os.Geteuid() == 0 {
		own = "/run/ringdns/ringdns.sock"
	}
	for _, tc := range []struct{ xdg, want string }{
		{xdg, filepath.Join(xdg, "ringdns.sock")},
		{xdg + "/", filepath.Join(xdg, "ringdns.sock")},
		{"", own},
		{"relative/run", own},
	} {
		t.Setenv("XDG_RUNTIME_DIR", tc.xdg)
		if got := DefaultControlPath(); got != tc.want {
			t.Errorf("XDG_RUNTIME_DIR=%q euid %d: %s, want %s", tc.xdg, os.Geteuid(), got, tc.want)
		}
	}
}

// TestListenControlRefusesSquattedDirectory points $XDG_RUNTIME_DIR at
// directories another user could have prepared: the daemon must refuse to
// put its default socket there rather than serve where a squatter can
// replace the socket.
func TestListenControlRefusesSquattedDirectory(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"owned by another user", func(t *testing.T, dir string) {
			if err := os.Chown(dir, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}, fmt.Sprintf("belongs to uid %d", nobody)},
		{"writable by everyone", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}, "mode 0777"},
		{"writable by everyone, sticky", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
		}, "mode 0777"},
		{"writable by the group", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o770); err != nil {
				t.Fatal(err)
			}
		}, "mode 0770"},
		{"a symbolic link", func(t *testing.T, dir string) {
			// The link is the directory named; its target is ours and private.
			target := dir + ".target"
			if err := os.Rename(dir, target); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir)
			t.Setenv("XDG_RUNTIME_DIR", dir)
			path := DefaultControlPath()
			s, err := ListenControl(path, echoHandler{}, quietLog())
			if err == nil {
				s.Close()
				t.Fatalf("ListenControl served in a directory %s", tc.name)
			}
			if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s and say %q", err, dir, tc.want)
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a socket was created: %v", err)
			}
		})
	}
}

// TestDefaultControlDir checks the choice of directory for users the test
// cannot become: root gets /run/ringdns, anyone else a directory of their
// own under the temporary directory, both made by ringdns; a relative
// $XDG_RUNTIME_DIR is ignored.
func TestDefaultControlDir(t *testing.T) {
	t.Setenv("TMPDIR", "/var/tmp")
	for _, tc := range []struct {
		xdg    string
		euid   int
		path   string
		create bool
	}{
		{"/run/user/1000", 1000, "/run/user/1000", false},
		{"/run/user/0/", 0, "/run/user/0", false},
		{"", 0, "/run/ringdns", true},
		{"", 1000, "/var/tmp/ringdns-1000", true},
		{"run/user/1000", 1000, "/var/tmp/ringdns-1000", true},
	} {
		d := defaultControlDir(tc.xdg, tc.euid)
		if d.path != tc.path || d.create != tc.create {
			t.Errorf("XDG_RUNTIME_DIR=%q euid %d: %s (create %v), want %s (create %v)",
				tc.xdg, tc.euid, d.path, d.create, tc.path, tc.create)
		}
	}
}

// TestControlDirCreated checks the directory ringdns makes for its socket
// when there is no $XDG_RUNTIME_DIR: made mode 0700 when missing, used
// when it is the user's own with that mode, refused with the reason when
// another user may have made it first or may write to it.
func TestControlDirCreated(t *testing.T) {
	requireRoot(t)
	me := os.Geteuid()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		euid  int    // the user ringdns runs as
		want  string // in the error; empty when accepted
	}{
		{"missing", nil, me, ""},
		{"own, 0700", mkdir(0o700, -1), me, ""},
		{"own, made by another user for it", mkdir(0o700, nobody), nobody, ""},
		{"made by another user", mkdir(0o700, nobody), me, fmt.Sprintf("belongs to uid %d, not to uid %d", nobody, me)},
		{"made by root for another user", mkdir(0o700, -1), nobody, fmt.Sprintf("belongs to uid %d, not to uid %d", me, nobody)},
		{"own, 0755", mkdir(0o755, -1), me, "mode 0755"},
		{"own, 0777", mkdir(0o777, -1), me, "mode 0777"},
		{"own, 0500", mkdir(0o500, -1), me, "mode 0500"},
		{"a symbolic link to an own 0700 directory", func(t *testing.T, dir string) {
			mkdir(0o700, -1)(t, dir+".target")
			if err := os.Symlink(dir+".target", dir); err != nil {
				t.Fatal(err)
			}
		}, me, "is a symbolic link"},
		{"a regular file", func(t *testing.T, dir string) { writeFile(t, dir, "") }, me, "is a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), fmt.Sprintf("ringdns-%d", tc.euid))
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			before, _ := os.Lstat(dir)
			err := controlDir{path: dir, create: true, fix: "remove it"}.prepare(tc.euid)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Lstat(dir)
				if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || fileOwner(fi) != tc.euid {
					t.Errorf("accepted %v, uid %d, %v; want a directory 0700 of uid %d", fi.Mode(), fileOwner(fi), err, tc.euid)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("prepare: %v; want an error naming %s and saying %q", err, dir, tc.want)
			}
			if after, _ := os.Lstat(dir); !os.SameFile(before, after) || before.Mode() != after.Mode() {
				t.Errorf("the refused %s was changed", tc.name)
			}
		})
	}
}

// mkdir makes a directory with mode perm, given to uid unless it is -1.
func mkdir(perm os.FileMode, uid int) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		if err := os.Mkdir(dir, perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, perm); err != nil { // past the umask
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(dir, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
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
