package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Server is a DNS server process started for a comparison.
type Server struct {
	Name string
	Addr string // host:port on loopback, for UDP and TCP.
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // The process's exit, valid once done is closed.
}

// syncBuffer collects a process's output; the process writes it while the
// test may read it for an error message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Keep the output bounded: a chatty server must not fill memory.
	if s.b.Len() > 1<<20 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs cmd with its output captured and a goroutine reaping it.
func start(name, addr string, cmd *exec.Cmd) (*Server, error) {
	s := &Server{Name: name, Addr: addr, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	// Its own process group, so that Stop can end any child it forks and
	// nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// Output is what the process has written so far.
func (s *Server) Output() string { return s.out.String() }

// Stop ends the process (SIGTERM, then SIGKILL after two seconds) and waits
// for it. It is safe to call more than once.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
}

// WaitReady waits until the server answers an authoritative SOA for every
// zone over UDP, or fails when the process exits or the timeout passes.
func (s *Server) WaitReady(zones []*Zone, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, z := range zones {
		for {
			select {
			case <-s.done:
				return fmt.Errorf("%s exited (%v) before answering; output:\n%s", s.Name, s.err, s.Output())
			default:
			}
			if s.answersSOA(z.Origin) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s gave no authoritative SOA for %s within %v; output:\n%s", s.Name, z.Origin, timeout, s.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func (s *Server) answersSOA(origin string) bool {
	m := new(dns.Msg)
	m.SetQuestion(origin, dns.TypeSOA)
	c := dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	r, _, err := c.Exchange(m, s.Addr)
	return err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative && len(r.Answer) > 0
}

// FreePort returns a loopback port free for both UDP and TCP at the time of
// the call. Another process could take it before the server binds it; the
// server then fails to start and says so.
func FreePort() (int, error) {
	for attempt := 0; attempt < 20; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free loopback port for UDP and TCP")
}

// KnotConfig is a minimal knotd configuration serving zones on
// 127.0.0.1:port: no journal, no signing, no zone file writes, the zones
// loaded whole from their files, and the same EDNS size and identity as
// ringdns is given.
func KnotConfig(dir string, port int, zones []*Zone, id Identity, udpSize int) string {
	var b strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&b, "server:\n")
	fmt.Fprintf(&b, "    rundir: %s\n", q(dir))
	fmt.Fprintf(&b, "    user: root:root\n")
	fmt.Fprintf(&b, "    listen: 127.0.0.1@%d\n", port)
	fmt.Fprintf(&b, "    identity: %s\n", q(id.Identity))
	fmt.Fprintf(&b, "    version: %s\n", q(id.Version))
	fmt.Fprintf(&b, "    nsid: %s\n", q(id.NSID))
	fmt.Fprintf(&b, "    udp-max-payload: %d\n", udpSize)
	fmt.Fprintf(&b, "    udp-max-payload-ipv4: %d\n", udpSize)
	fmt.Fprintf(&b, "    udp-max-payload-ipv6: %d\n", udpSize)
	// Two cores shared with others: few threads are plenty for loopback.
	fmt.Fprintf(&b, "    udp-workers: 2\n    tcp-workers: 2\n    background-workers: 1\n")
	fmt.Fprintf(&b, "database:\n    storage: %s\n", q(dir))
	fmt.Fprintf(&b, "log:\n  - target: stderr\n    any: warning\n")
	fmt.Fprintf(&b, "template:\n  - id: default\n    storage: %s\n", q(dir))
	fmt.Fprintf(&b, "    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n")
	fmt.Fprintf(&b, "zone:\n")
	for _, z := range zones {
		abs, err := filepath.Abs(z.Path)
		if err != nil {
			abs = z.Path
		}
		fmt.Fprintf(&b, "  - domain: %s\n    file: %s\n", q(z.Origin), q(abs))
	}
	return b.String()
}

// StartKnot writes a configuration into dir and starts knotd from bin with
// it on a free loopback port.
func StartKnot(name, bin, dir string, zones []*Zone, id Identity, udpSize int) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(conf, []byte(KnotConfig(dir, port, zones, id, udpSize)), 0o644); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return start(name, addr, exec.Command(bin, "-c", conf))
}

// RingdnsConfig is the TOML configuration given to ringdns: the identity
// and EDNS settings that must equal knotd's for the replies to be comparable.
func RingdnsConfig(id Identity, udpSize int) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\n")
	fmt.Fprintf(&b, "identity = %s\n", q(id.Identity))
	fmt.Fprintf(&b, "version = %s\n", q(id.Version))
	fmt.Fprintf(&b, "nsid = %s\n", q(id.NSID))
	fmt.Fprintf(&b, "udp-size = %d\n", udpSize)
	return b.String()
}

// StartRingdns writes a configuration into dir and starts the ringdns binary
// bin serving zones on a free loopback port, with its control socket in dir.
func StartRingdns(name, bin, dir string, zones []*Zone, id Identity, udpSize int) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(conf, []byte(RingdnsConfig(id, udpSize)), 0o644); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"-config", conf, "-listen", addr, "-control", filepath.Join(dir, "control.sock")}
	for _, z := range zones {
		args = append(args, "-zone", z.Origin+"="+z.Path)
	}
	return start(name, addr, exec.Command(bin, args...))
}
