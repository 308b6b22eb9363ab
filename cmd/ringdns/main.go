// Command ringdns is an authoritative DNS server. With no arguments it
// serves a small example zone on 127.0.0.1:5353 and [::1]:5353; see
// README.md for the configuration and the check subcommand.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ringdns/ringdns/configs"
	"github.com/ringdns/ringdns/controlplane"
	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/privdrop"
	"github.com/ringdns/ringdns/internal/sdnotify"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// options are the flags shared by serving and check.
type options struct {
	config, xdp, cpus, control, metrics string
	zones, listen                       listFlag
	// configData is the -config file's bytes, kept for a hand-over to a
	// new binary (upgrade.go), or the ones the old process passed.
	configData []byte
}

func (o *options) register(fs *flag.FlagSet, serving bool) {
	fs.StringVar(&o.config, "config", "", "TOML configuration `file` (default: the embedded example configuration)")
	fs.Var(&o.zones, "zone", "serve a zone: `ORIGIN=PATH` (repeatable; adds to or replaces the file's zones)")
	if !serving {
		return
	}
	fs.Var(&o.listen, "listen", "UDP and TCP address `ADDR:PORT` (repeatable; replaces the file's list)")
	fs.StringVar(&o.xdp, "xdp", "", "also serve UDP from AF_XDP rings on `IFACE`, all its RX queues (the [xdp] table has more settings)")
	fs.StringVar(&o.cpus, "cpus", "", "CPU `LIST` for the workers, e.g. 0-1,3 (default: all allowed CPUs)")
	fs.StringVar(&o.control, "control", "", "control socket `PATH` (default: $XDG_RUNTIME_DIR/ringdns.sock, /run/ringdns/ringdns.sock for root, else /tmp/ringdns-UID/ringdns.sock)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on `ADDR:PORT`")
}

// config builds the configuration: the -config file, or the embedded
// default when there is none and no -zone either, then the flags over it.
func (o *options) build() (*controlplane.Config, error) {
	var cfg *controlplane.Config
	var err error
	switch {
	case o.config != "":
		if o.configData == nil {
			if o.configData, err = os.ReadFile(o.config); err != nil {
				return nil, err
			}
		}
		cfg, err = controlplane.ParseConfigFile(o.configData, o.config)
	case len(o.zones) == 0:
		var data []byte
		if data, err = configs.Default.ReadFile(configs.DefaultConfig); err == nil {
			cfg, err = controlplane.ParseConfig(data, "(embedded default config)")
		}
		if cfg != nil {
			cfg.FS = configs.Default
		}
	default:
		cfg = &controlplane.Config{Source: "(flags)"}
	}
	if err != nil {
		return nil, err
	}
	for _, z := range o.zones {
		origin, path, ok := strings.Cut(z, "=")
		if !ok || origin == "" || path == "" {
			return nil, fmt.Errorf("-zone %q: want ORIGIN=PATH", z)
		}
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		cfg.AddZone(origin, path)
	}
	if len(o.listen) > 0 {
		cfg.Server.Listen = append([]string(nil), o.listen...)
	}
	if o.xdp != "" {
		if cfg.XDP == nil {
			cfg.XDP = &controlplane.XDPConfig{}
		}
		cfg.XDP.Interface = o.xdp
	}
	if o.cpus != "" {
		cfg.Server.CPUs = o.cpus
	}
	if o.control != "" {
		cfg.Server.Control = o.control
	}
	if o.metrics != "" {
		cfg.Server.Metrics = o.metrics
	}
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return check(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("ringdns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: ringdns [flags]          serve (no flags: the example zone on 127.0.0.1:5353)\n")
		fmt.Fprintf(stderr, "       ringdns check [-config FILE] [-zone ORIGIN=PATH]...\n\nflags:\n")
		fs.PrintDefaults()
	}
	var o options
	o.register(fs, true)
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ringdns: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, "ringdns", controlplane.Version)
		return 0
	}
	// The path started from is taken now, while the file is surely
	// there: an upgrade without a path runs the file at that path then.
	exe, exeErr := os.Executable()
	child, err := takeHandover()
	if err != nil {
		fmt.Fprintf(stderr, "ringdns: %v\n", err)
		return 1
	}
	journal := underJournal(stderr)
	if child != nil {
		// Standard error is a pipe to the old process until this one
		// serves; the log is formatted for where it goes then.
		journal = underJournal(child.stderr())
		if child.offer.ConfigSource == o.config && o.config != "" {
			o.configData = child.offer.Config
		}
	}
	log := newLogger(stderr, journal)
	cfg, err := o.build()
	if err != nil {
		child.fail(err)
		fmt.Fprintf(stderr, "%s%v\n", errorPrefix(journal), err)
		return 1
	}
	if exeErr != nil {
		log.Warn("the path of ringdns's binary is not known; ringctl upgrade needs the new binary's path", "err", exeErr)
	}
	u := &upgrader{log: log, exe: exe, args: args, configSource: o.config, config: o.configData}
	return serve(cfg, log, stdout, stderr, journal, u, child)
}

func serve(cfg *controlplane.Config, log *slog.Logger, stdout, stderr io.Writer, journal bool, u *upgrader, child *handoverChild) int {
	// Signals are caught before the sockets open, so a SIGTERM that arrives
	// during startup still leads to an orderly exit.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	fail := func(err error) int {
		child.fail(err)
		fmt.Fprintf(stderr, "%s%v\n", errorPrefix(journal), err)
		return 1
	}

	// The notification socket is connected now, while the daemon may
	// still open it whoever owns it.
	notify, err := sdnotify.Open()
	if err != nil {
		log.Warn("systemd notification socket; systemd will not hear that ringdns is ready", "err", err)
	}
	defer notify.Close()
	// The user is looked up before anything is opened, so that a name
	// that does not exist stops ringdns before it binds a socket.
	id, err := lookupIdentity(cfg)
	if err != nil {
		return fail(err)
	}
	if err := prepareDirs(cfg, id); err != nil {
		return fail(err)
	}

	log.Info("starting", "version", controlplane.Version, "config", cfg.Source, "zones", len(cfg.Zones))
	notify.Status("loading zones and opening sockets")
	srv, err := controlplane.NewServerInherited(cfg, log, child.inherited())
	child.closeFiles()
	if err != nil {
		if errors.Is(err, controlplane.ErrNoZones) {
			err = fmt.Errorf("%w: every configured zone failed to load (see the errors above); not starting", err)
		}
		return fail(err)
	}
	if err := child.loaded(); err != nil {
		srv.Shutdown()
		return fail(fmt.Errorf("returning to the running ringdns's CPU priority: %w", err))
	} else if child != nil && child.lowered {
		log.Info("upgrade: loaded at a lower CPU priority, leaving the CPUs to the old workers; back to theirs",
			"nice_while_loading", child.nice+startNiceStep, "nice", child.nice)
	}
	dropped, err := dropPrivileges(srv, cfg, id, log)
	if err == nil && dropped {
		err = checkWritable(cfg)
	}
	if err != nil {
		srv.Shutdown()
		return fail(fmt.Errorf("dropping privileges: %w", err))
	}
	if cfg.Server.Seccomp {
		if err := privdrop.Seccomp(); err != nil {
			srv.Shutdown()
			return fail(err)
		}
		log.Info("seccomp filter installed: system calls other than those ringdns makes while serving fail with EPERM")
	}
	if child != nil {
		// Every zone is loaded and every socket taken: the workers wait,
		// their threads made and pinned, while the old process stops
		// its own; once told to go, the AF_XDP ports take the old
		// process's free frames and the workers run at once, before
		// anything else is done.
		srv.PrestartWorkers()
		g, err := child.ready()
		if err == nil {
			err = srv.AdoptXDP(g.XDP)
		}
		if err != nil {
			srv.Shutdown()
			return fail(fmt.Errorf("taking over from pid %d: %w", child.offer.PID, err))
		}
		srv.ReleaseWorkers()
		srv.TakeOver()
		log.Info("took over from the old process", "old_pid", child.offer.PID, "old_version", child.offer.Version)
		go srv.LogXDPResumes(2 * time.Second)
	}
	u.srv, u.notify = srv, notify
	srv.SetUpgrader(u.upgrade)
	var addrs []string
	for _, ap := range srv.Listen() {
		addrs = append(addrs, ap.String())
	}
	log.Info("serving", "listen", strings.Join(addrs, " "), "control", srv.ControlPath(),
		"metrics", srv.MetricsAddr(), "workers", srv.Status().Workers)
	fmt.Fprintln(stdout, howToQuery(cfg, srv.Listen(), srv.ControlPath()))

	hup := make(chan struct{}, 1)
	go func() {
		for range hup {
			notify.Reloading("reloading zones")
			srv.ReloadCookies(nil)
			srv.ReloadRRL(nil)
			srv.ReloadDnstap(nil)
			if _, err := srv.Catalog.Reload(nil); err != nil {
				log.Error("reload on SIGHUP", "err", err)
			}
			notify.Ready(servingStatus(srv))
		}
	}()
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGUSR2 {
				go func() {
					if res, err := u.upgrade(""); err != nil {
						log.Error("upgrade on SIGUSR2", "err", err)
					} else {
						log.Info("upgraded on SIGUSR2", "new_pid", res.NewPID, "new_version", res.NewVersion)
					}
				}()
				continue
			}
			if sig == syscall.SIGHUP {
				// Reloads already queued cover this signal too.
				select {
				case hup <- struct{}{}:
				default:
				}
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			notify.Stopping("shutting down on " + sig.String())
			srv.Shutdown()
			return
		}
	}()
	go func() {
		// Every zone is loaded and every socket open once NewServer has
		// returned; the workers read them once Run has started them.
		<-srv.Running()
		if child != nil {
			if err := child.serving(); err != nil {
				log.Warn("telling the old process this one serves", "err", err)
			}
			// Under NotifyAccess=all this process names itself; under
			// main the old process has named it (upgrade.go).
			notify.Send("MAINPID=" + strconv.Itoa(os.Getpid()))
		}
		if err := notify.Ready(servingStatus(srv)); err != nil {
			log.Warn("telling systemd ringdns is ready", "err", err)
		}
	}()
	err = srv.Run()
	close(hup)
	if err != nil {
		notify.Stopping("stopping on an error: " + err.Error())
		return fail(err)
	}
	if u.done.Load() {
		log.Info("stopped: handed over to the new process")
		return 0
	}
	log.Info("stopped")
	return 0
}

// servingStatus is the STATUS= line systemctl status shows while serving.
func servingStatus(srv *controlplane.Server) string {
	st := srv.Status()
	return fmt.Sprintf("serving %d of %d zones (%d failing) on %s; %s", st.ZonesServing, st.ZonesTotal, st.ZonesFailing,
		strings.Join(st.Listen, " "), st.DataPlane)
}

// howToQuery tells the operator how to ask the server something.
func howToQuery(cfg *controlplane.Config, listen []netip.AddrPort, control string) string {
	var b strings.Builder
	origin := "."
	if len(cfg.Zones) > 0 {
		origin = cfg.Zones[0].Origin
	}
	fmt.Fprintf(&b, "ringdns is serving")
	for _, z := range cfg.Zones {
		fmt.Fprintf(&b, " %s", z.Origin)
	}
	fmt.Fprintf(&b, " (control socket %s). Try:\n", control)
	for _, ap := range listen {
		fmt.Fprintf(&b, "  kdig @%s -p %d %s SOA\n", ap.Addr(), ap.Port(), origin)
	}
	if len(listen) > 0 {
		ap := listen[0]
		fmt.Fprintf(&b, "  kdig @%s -p %d +tcp %s NS\n", ap.Addr(), ap.Port(), origin)
	}
	fmt.Fprintf(&b, "  ringctl -s %s status", control)
	return b.String()
}

// check validates the configuration and loads every zone without serving.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ringdns check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	o.register(fs, false)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ringdns check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := o.build()
	if err != nil {
		fmt.Fprintf(stderr, "ringdns check: %v\n", err)
		return 1
	}
	if len(cfg.Zones) == 0 {
		fmt.Fprintf(stderr, "ringdns check: %s: no zones configured\n", cfg.Source)
		return 1
	}
	if id, err := lookupIdentity(cfg); err != nil {
		fmt.Fprintf(stderr, "ringdns check: %v\n", err)
		return 1
	} else if id != nil {
		fmt.Fprintf(stdout, "ok: server.user: %s\n", id)
	}
	// Zone loads are reported below; the logger would only repeat them.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	results, err := controlplane.CheckZones(cfg, quiet)
	for _, r := range results {
		for _, w := range r.Warnings {
			fmt.Fprintf(stdout, "warning: %s: zone %s: %s\n", r.File, r.Origin, w)
		}
		if r.Status == control.StatusFailed {
			fmt.Fprintf(stderr, "error: %s\n", r.Error)
			continue
		}
		if r.Status == control.StatusNoCopy {
			fmt.Fprintf(stdout, "ok: zone %s: secondary with no copy in %s yet; it is served once transferred from its primaries\n", r.Origin, r.File)
			continue
		}
		fmt.Fprintf(stdout, "ok: zone %s: serial %d, %d records, %d bytes, ZONEMD %s (%s)\n", r.Origin, r.Serial, r.Records, r.Bytes, r.ZONEMD, r.File)
	}
	if err != nil {
		failed := 0
		for _, r := range results {
			if r.Status == control.StatusFailed {
				failed++
			}
		}
		if failed == 0 {
			fmt.Fprintf(stderr, "error: %v\n", err)
		}
		fmt.Fprintf(stderr, "ringdns check: %s: failed\n", cfg.Source)
		return 1
	}
	fmt.Fprintf(stdout, "ringdns check: %s: %d zones ok\n", cfg.Source, len(results))
	return 0
}
