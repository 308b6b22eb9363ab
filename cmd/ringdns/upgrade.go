package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/controlplane"
	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/handover"
	"github.com/ringdns/ringdns/internal/sdnotify"
)

// This file is the hitless upgrade (issue 17) as the daemon carries it
// out: the old process starts the new binary with one end of a socket
// pair and hands it its sockets and configuration (upgrader), and the new
// process takes them over (handoverChild). The protocol is
// internal/handover's; the server's part, controlplane/upgrade.go.

// Bounds of a hand-over. readyTimeout covers the new process's start and
// its load of every zone: seconds for a large TLD here, minutes on a slow
// disk, and it stays under ringctl's own five-minute wait. pauseTimeout
// bounds the old workers' stop, which takes at most a batch and the
// sockets' 100 ms receive timeout. servingTimeout is the new process's
// start of its workers once told to go; exitTimeout how long a failed new
// process is given to exit before it is killed.
const (
	readyTimeout   = 4 * time.Minute
	pauseTimeout   = 10 * time.Second
	servingTimeout = 30 * time.Second
	exitTimeout    = 5 * time.Second
	// stderrTail is how much of a failed new process's last output is
	// kept for the error ringctl prints.
	stderrTail = 2048
)

// upgrader starts a new binary and hands the server over to it.
type upgrader struct {
	srv    *controlplane.Server
	log    *slog.Logger
	notify *sdnotify.Notifier
	// exe is the path this process was started from, as os.Executable
	// reported it at start, before a package upgrade could replace or
	// remove the file; the file at that path then is what an upgrade
	// without a path runs.
	exe  string
	args []string
	// configSource and config are the configuration file's path and its
	// bytes as read at start; config is nil for the embedded default.
	configSource string
	config       []byte

	mu   sync.Mutex
	done atomic.Bool
}

// upgrade runs the hand-over to the binary at path (exe when empty). It
// returns once the new process serves, and the old one's service ends
// then; on error nothing has changed and the new process has exited.
func (u *upgrader) upgrade(path string) (control.UpgradeResult, error) {
	var res control.UpgradeResult
	if !u.mu.TryLock() {
		return res, errors.New("upgrade: another upgrade is under way")
	}
	defer u.mu.Unlock()
	if u.done.Load() {
		return res, errors.New("upgrade: this process has already handed over to a new one")
	}
	if path == "" {
		path = u.exe
	}
	if !filepath.IsAbs(path) {
		return res, fmt.Errorf("upgrade: %q: the new binary's path must be absolute", path)
	}
	if fi, err := os.Stat(path); err != nil {
		return res, fmt.Errorf("upgrade: %w", err)
	} else if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return res, fmt.Errorf("upgrade: %s is not an executable file", path)
	}
	// The kernel's drop counters of the AF_XDP sockets, read before and
	// after each step, tell in the log where an upgrade lost queries:
	// while the new binary started and loaded (the old workers short of
	// CPU), while the old workers stopped, or after (the new process
	// logs its own share, LogXDPResumes).
	drops0 := u.srv.XDPDrops()
	files, fds, err := u.srv.HandoverFiles()
	if err != nil {
		return res, fmt.Errorf("upgrade: %w", err)
	}
	defer func() {
		for _, f := range fds {
			f.Close()
		}
	}()
	conn, peer, err := handover.Pair()
	if err != nil {
		return res, fmt.Errorf("upgrade: %w", err)
	}
	defer conn.Close()
	// Until it serves, the new process writes its standard error into a
	// pipe read here, copied to this process's own and kept for the
	// error; once it serves it takes the real one (passed as descriptor
	// 4), so that nothing it writes later depends on this process.
	pr, pw, err := os.Pipe()
	if err != nil {
		peer.Close()
		return res, fmt.Errorf("upgrade: %w", err)
	}
	cmd := exec.Command(path, u.args...)
	cmd.Env = append(withoutHandoverEnv(os.Environ()), handover.EnvFD+"=3", handover.EnvStderrFD+"=4")
	cmd.Env = append(cmd.Env, niceEnv()...)
	cmd.ExtraFiles = []*os.File{peer, os.Stderr}
	cmd.Stdout = os.Stdout
	cmd.Stderr = pw
	err = cmd.Start()
	peer.Close()
	pw.Close()
	if err != nil {
		pr.Close()
		return res, fmt.Errorf("upgrade: starting %s: %w", path, err)
	}
	tail := &tailWriter{max: stderrTail}
	copied := make(chan struct{})
	go func() {
		io.Copy(io.MultiWriter(os.Stderr, tail), pr)
		pr.Close()
		close(copied)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	u.log.Info("upgrade: new binary started", "path", path, "pid", pid, "sockets", len(fds))

	// fail ends the new process, which has not served, and returns the
	// error with what it said: the error it reported, or its exit status
	// and last output.
	fail := func(err error) (control.UpgradeResult, error) {
		conn.Close()
		var werr error
		select {
		case werr = <-exited:
		case <-time.After(exitTimeout):
			cmd.Process.Kill()
			werr = <-exited
			werr = fmt.Errorf("killed after %v: %w", exitTimeout, werr)
		}
		select {
		case <-copied:
		case <-time.After(time.Second):
		}
		var perr *handover.PeerError
		msg := fmt.Sprintf("upgrade to %s (pid %d) failed; this process (pid %d) keeps serving: %v", path, pid, os.Getpid(), err)
		if !errors.As(err, &perr) && !errors.Is(err, handover.ErrVersion) {
			if werr != nil {
				msg += fmt.Sprintf("; it exited: %v", werr)
			} else {
				msg += "; it exited with status 0"
			}
			if t := strings.TrimSpace(tail.String()); t != "" {
				msg += "; its last output: " + t
			}
		}
		u.log.Error("upgrade failed", "path", path, "pid", pid, "err", msg)
		return res, errors.New(msg)
	}

	conn.SetDeadline(time.Now().Add(readyTimeout))
	offer := handover.Offer{PID: os.Getpid(), Version: controlplane.Version, ConfigSource: u.configSource,
		Config: u.config, Files: files, Zones: u.srv.ServedZones(), XDP: u.srv.XDPState(), Cookies: u.srv.CookieState()}
	if err := conn.Send(handover.MsgOffer, offer, fds); err != nil {
		return fail(err)
	}
	var ready handover.Ready
	if _, err := conn.Expect(handover.MsgReady, &ready); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("it closed the hand-over socket before it was ready (it does not take over, or it failed)")
		}
		return fail(err)
	}
	// The new process has every zone loaded and every socket: the old
	// workers stop after the batch in hand, and from here until the new
	// ones start the datagrams wait in the sockets' buffers.
	paused := time.Now()
	drops1 := u.srv.XDPDrops()
	if err := u.srv.PauseWorkers(pauseTimeout); err != nil {
		u.srv.ResumeWorkers()
		return fail(err)
	}
	conn.SetDeadline(time.Now().Add(servingTimeout))
	// The AF_XDP ports, stopped, send what their TX rings hold and say
	// which frames they hold free; the rest are on the rings.
	queues := u.srv.XDPQueueStates()
	drops2 := u.srv.XDPDrops()
	if err := conn.Send(handover.MsgGo, handover.Go{XDP: queues}, nil); err != nil {
		u.srv.ResumeWorkers()
		return fail(err)
	}
	if _, err := conn.Expect(handover.MsgServing, nil); err != nil {
		// Killed before it could answer, or stuck: it must not serve
		// beside the resumed workers.
		cmd.Process.Kill()
		u.srv.ResumeWorkers()
		return fail(err)
	}
	pause := time.Since(paused)
	u.done.Store(true)
	// The new process is systemd's main process from now on: under
	// Type=notify (NotifyAccess=main) only the main process may say so.
	if err := u.notify.Send("MAINPID=" + strconv.Itoa(pid)); err != nil {
		u.log.Warn("telling systemd the new main process", "pid", pid, "err", err)
	}
	res = control.UpgradeResult{Binary: path, OldPID: os.Getpid(), OldVersion: controlplane.Version, NewPID: pid,
		NewVersion: ready.Version, Protocol: handover.Version, Sockets: len(fds),
		PausedMillis: float64(pause.Microseconds()) / 1e3}
	u.log.Info("upgrade: handed over; finishing the TCP connections and exiting", "new_pid", pid,
		"new_version", ready.Version, "paused_ms", res.PausedMillis,
		"xdp_dropped_while_starting", drops1-drops0, "xdp_dropped_while_stopping", drops2-drops1)
	// What this process still does (the TCP connections it finishes, the
	// sockets it closes, and at its exit the kernel's unmapping of its
	// memory) is done with the CPU the new workers leave: at nice 10
	// above its own, as the new process loaded (a tenth of the weight, not
	// the lowest, so that its TCP clients still get answers while the
	// workers are busy). CI's AF_XDP upgrades under load twice dropped
	// queries in the second after a queue resumed, while the old
	// race-built process finished and exited on the same two CPUs, the
	// load generator starved too (p99 latency of the run 135-296 ms
	// against pauses of 8-47 ms).
	if err := lowerAfterHandover(); err != nil {
		u.log.Warn("upgrade: lowering the old process's priority", "err", err)
	}
	// The control connection that asked for the upgrade gets its reply
	// before the control socket closes: Close waits for it.
	go u.srv.FinishHandover()
	return res, nil
}

// envNice asks the new binary of an upgrade to run at a lower CPU priority
// until it has loaded, and says the nice value to return to then (see
// nice_linux.go).
const envNice = "RINGDNS_HANDOVER_NICE"

// startNiceStep is how much lower the new binary runs until loaded: nice
// 10 against 0 weighs about a tenth as much for the scheduler.
const startNiceStep = 10

// withoutHandoverEnv drops the hand-over variables this process itself
// may have been started with.
func withoutHandoverEnv(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if strings.HasPrefix(e, handover.EnvFD+"=") || strings.HasPrefix(e, handover.EnvStderrFD+"=") || strings.HasPrefix(e, envNice+"=") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// tailWriter keeps the last max bytes written.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// handoverChild is the new process's side of a hand-over.
type handoverChild struct {
	conn  *handover.Conn
	offer handover.Offer
	inh   *controlplane.Inherited
	// realStderr is the daemon's standard error (descriptor 4 at start),
	// nil when not passed.
	realStderr *os.File
	// lowered is set when this process runs at a lower CPU priority until
	// loaded (envNice), nice the nice value to return to then.
	lowered bool
	nice    int
}

// takeHandover reads the old process's offer when this process was started
// by an upgrade, and returns nil otherwise. The variables are removed from
// the environment, so that a later upgrade of this process does not pass
// them on.
func takeHandover() (*handoverChild, error) {
	v, ok := os.LookupEnv(handover.EnvFD)
	if !ok {
		return nil, nil
	}
	sv := os.Getenv(handover.EnvStderrFD)
	nv, lowered := os.LookupEnv(envNice)
	os.Unsetenv(handover.EnvFD)
	os.Unsetenv(handover.EnvStderrFD)
	os.Unsetenv(envNice)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: want a descriptor number", handover.EnvFD, v)
	}
	h := &handoverChild{}
	if n, err := strconv.Atoi(nv); lowered && err == nil && n >= -20 && n+startNiceStep <= 19 {
		// Raising one's own nice needs no privilege; a failure only
		// leaves this process at the old one's priority.
		if setAllNice(n+startNiceStep) == nil {
			h.lowered, h.nice = true, n
		}
	}
	if n, err := strconv.Atoi(sv); err == nil && n >= 3 {
		unix.CloseOnExec(n)
		h.realStderr = os.NewFile(uintptr(n), "stderr")
	}
	f := os.NewFile(uintptr(fd), "handover")
	h.conn, err = handover.FromFile(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	h.conn.SetDeadline(time.Now().Add(30 * time.Second))
	frame, err := h.conn.Expect(handover.MsgOffer, &h.offer)
	if err != nil {
		h.conn.Close()
		return nil, fmt.Errorf("taking over from the running ringdns: %w", err)
	}
	h.conn.SetDeadline(time.Time{})
	if h.inh, err = controlplane.NewInherited(h.offer.Files, frame.Files); err != nil {
		frame.CloseFiles()
		h.fail(err)
		return nil, err
	}
	h.inh.MustServe = h.offer.Zones
	h.inh.XDPState = h.offer.XDP
	h.inh.Cookies = h.offer.Cookies
	return h, nil
}

// loaded returns this process to the old one's CPU priority once it has
// loaded and built its server, before it drops its privileges (which may
// take the right to) and before its workers start: it ran lower so as to
// leave the CPUs to the old workers meanwhile (nice_linux.go).
func (h *handoverChild) loaded() error {
	if h == nil || !h.lowered {
		return nil
	}
	return setAllNice(h.nice)
}

// stderr is the daemon's real standard error, the one this process takes
// as its own once it serves: where its log goes from then on, and what
// decides whether it writes for the journal.
func (h *handoverChild) stderr() *os.File {
	if h == nil || h.realStderr == nil {
		return os.Stderr
	}
	return h.realStderr
}

// inherited is what the server takes over; nil when not a hand-over.
func (h *handoverChild) inherited() *controlplane.Inherited {
	if h == nil {
		return nil
	}
	return h.inh
}

// closeFiles closes the inherited descriptors once the server has its own.
func (h *handoverChild) closeFiles() {
	if h != nil {
		h.inh.Close()
	}
}

// fail reports err to the old process, which goes on serving.
func (h *handoverChild) fail(err error) {
	if h == nil {
		return
	}
	h.conn.SetDeadline(time.Now().Add(5 * time.Second))
	h.conn.Send(handover.MsgFailed, handover.Failed{Error: err.Error()}, nil)
	h.conn.Close()
	h.inh.Close()
}

// ready tells the old process that every zone is loaded and every socket
// taken, waits until it has stopped its workers, and returns what it
// handed over with the word to go.
func (h *handoverChild) ready() (handover.Go, error) {
	var g handover.Go
	h.conn.SetDeadline(time.Now().Add(readyTimeout))
	if err := h.conn.Send(handover.MsgReady, handover.Ready{PID: os.Getpid(), Version: controlplane.Version}, nil); err != nil {
		return g, err
	}
	if _, err := h.conn.Expect(handover.MsgGo, &g); err != nil {
		if errors.Is(err, io.EOF) {
			return g, errors.New("the running ringdns ended the hand-over before telling this process to go; it keeps serving")
		}
		return g, err
	}
	return g, nil
}

// serving takes the daemon's real standard error and tells the old
// process that the workers run.
func (h *handoverChild) serving() error {
	if h.realStderr != nil {
		if err := unix.Dup2(int(h.realStderr.Fd()), 2); err == nil {
			h.realStderr.Close()
			h.realStderr = nil
		}
	}
	err := h.conn.Send(handover.MsgServing, nil, nil)
	h.conn.Close()
	return err
}
