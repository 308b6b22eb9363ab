// Command ringctl talks to a running ringdns over its control socket:
//
//	ringctl [-s PATH] [-json] status | zones | reload [ZONE...] | stats |
//	        zone-status [ZONE...] | refresh ZONE | retransfer ZONE | notify ZONE |
//	        rssac002 [-date YYYY-MM-DD] | upgrade [PATH]
//
// It prints tables by default and the daemon's JSON with -json. A reload in
// which any zone failed prints each error (file:line) and exits 1.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ringctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("s", control.DefaultPath(), "control socket `PATH` (the default is used only if it and its directory belong to you or root)")
	asJSON := fs.Bool("json", false, "print the daemon's reply as JSON")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on a reply after this long (reloads of large zones take a while)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: ringctl [-s PATH] [-json] status | zones | reload [ZONE...] | stats |\n"+
			"               zone-status [ZONE...] | refresh ZONE | retransfer ZONE | notify ZONE |\n"+
			"               cookie-rotate [SECRET | -] | rssac002 [-date YYYY-MM-DD] | upgrade [PATH]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	req := control.Request{Cmd: fs.Arg(0), Zones: fs.Args()[1:]}
	switch req.Cmd {
	case control.CmdStatus, control.CmdZones, control.CmdStats:
		if len(req.Zones) > 0 {
			fmt.Fprintf(stderr, "ringctl: %s takes no arguments\n", req.Cmd)
			return 2
		}
	case control.CmdReload, control.CmdZoneStatus:
	case control.CmdRefresh, control.CmdRetransfer, control.CmdNotify:
		if len(req.Zones) != 1 {
			fmt.Fprintf(stderr, "ringctl: %s takes one zone\n", req.Cmd)
			return 2
		}
	case control.CmdCookieRotate:
		// The secret goes over the control socket, which only its owner
		// can open, and is never printed back.
		// "-" reads it from the standard input, which keeps it out of
		// the process list that every local user can read.
		if len(req.Zones) > 1 {
			fmt.Fprintf(stderr, "ringctl: %s takes at most one secret (32 hex digits, or - to read it from the standard input)\n", req.Cmd)
			return 2
		}
		if len(req.Zones) == 1 && req.Zones[0] == "-" {
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil && line == "" {
				fmt.Fprintf(stderr, "ringctl: %s -: reading the secret from the standard input: %v\n", req.Cmd, err)
				return 1
			}
			req.Zones[0] = strings.TrimSpace(line)
		}
	case control.CmdRSSAC002:
		// The day's date goes to the daemon as the request's one
		// argument; none asks for the day so far.
		rf := flag.NewFlagSet("ringctl rssac002", flag.ContinueOnError)
		rf.SetOutput(stderr)
		date := rf.String("date", "", "the UTC day `YYYY-MM-DD` to print (default: today so far)")
		if err := rf.Parse(req.Zones); err != nil {
			return 2
		}
		if rf.NArg() > 0 {
			fmt.Fprintf(stderr, "ringctl: %s takes -date YYYY-MM-DD and nothing else\n", req.Cmd)
			return 2
		}
		if _, err := time.Parse(time.DateOnly, *date); *date != "" && err != nil {
			fmt.Fprintf(stderr, "ringctl: %s -date %q: want YYYY-MM-DD\n", req.Cmd, *date)
			return 2
		}
		req.Zones = nil
		if *date != "" {
			req.Zones = []string{*date}
		}
	case control.CmdUpgrade:
		if rc := upgradeArgs(&req, stderr); rc != 0 {
			return rc
		}
	default:
		fmt.Fprintf(stderr, "ringctl: unknown command %q\n", req.Cmd)
		fs.Usage()
		return 2
	}

	// The default path is where another local user could have put a
	// listener posing as ringdns; a path named with -s is trusted as given.
	named := false
	fs.Visit(func(f *flag.Flag) { named = named || f.Name == "s" })
	if !named {
		if err := control.CheckDefaultSocket(*sock); err != nil {
			fmt.Fprintf(stderr, "ringctl: %v\n", err)
			return 1
		}
	}
	c, err := control.Dial(*sock, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "ringctl: %v\n", err)
		return 1
	}
	defer c.Close()
	rep, err := c.Do(req, nil)
	if err != nil {
		fmt.Fprintf(stderr, "ringctl: %v\n", err)
		return 1
	}
	if *asJSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
		if !rep.OK {
			return 1
		}
		return 0
	}
	if req.Cmd == control.CmdRSSAC002 && rep.OK {
		return printRSSAC(stdout, stderr, rep.Data)
	}
	if len(rep.Data) > 0 {
		if err := printHuman(stdout, req.Cmd, rep.Data); err != nil {
			fmt.Fprintf(stderr, "ringctl: %v\n", err)
			return 1
		}
	}
	if !rep.OK {
		fmt.Fprintf(stderr, "ringctl: %s\n", rep.Error)
		return 1
	}
	return 0
}

func printHuman(w io.Writer, cmd string, data json.RawMessage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch cmd {
	case control.CmdUpgrade:
		return printUpgrade(w, data)
	case control.CmdStatus:
		var s control.Status
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		fmt.Fprintf(tw, "version\t%s (%s)\n", s.Version, s.GoVersion)
		fmt.Fprintf(tw, "pid\t%d\n", s.PID)
		fmt.Fprintf(tw, "uptime\t%s\n", (time.Duration(s.Uptime) * time.Second).Round(time.Second))
		fmt.Fprintf(tw, "listen\t%s\n", strings.Join(s.Listen, " "))
		fmt.Fprintf(tw, "data plane\t%s, %d workers on CPUs %v\n", s.DataPlane, s.Workers, s.CPUs)
		fmt.Fprintf(tw, "control\t%s\n", s.Control)
		if s.Metrics != "" {
			fmt.Fprintf(tw, "metrics\thttp://%s/metrics\n", s.Metrics)
		}
		fmt.Fprintf(tw, "zones\t%d serving, %d failing, %d configured\n", s.ZonesServing, s.ZonesFailing, s.ZonesTotal)
		fmt.Fprintf(tw, "reloads\t%d (%d with failures), last swap %.1f µs\n", s.Reloads, s.ReloadFailures, s.LastSwapMicros)
	case control.CmdZones:
		var zs []control.ZoneStatus
		if err := json.Unmarshal(data, &zs); err != nil {
			return err
		}
		fmt.Fprintf(tw, "ZONE\tSERIAL\tRECORDS\tBYTES\tLOADED\tLOAD\tSTATE\tFILE\n")
		for _, z := range zs {
			state := "ok"
			switch {
			case !z.Serving:
				state = "not served"
			case z.LastError != "":
				state = "stale"
			}
			loaded := "-"
			if !z.Loaded.IsZero() {
				loaded = z.Loaded.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%.3fs\t%s\t%s\n", z.Origin, z.Serial, z.Records, z.Bytes, loaded, z.Seconds, state, z.File)
		}
		tw.Flush()
		for _, z := range zs {
			if z.LastError != "" {
				fmt.Fprintf(w, "%s: last load failed: %s\n", z.Origin, z.LastError)
			}
		}
	case control.CmdReload:
		var r control.ReloadResult
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		fmt.Fprintf(tw, "ZONE\tRESULT\tSERIAL\tRECORDS\tTIME\n")
		for _, z := range r.Zones {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.3fs\n", z.Origin, z.Status, z.Serial, z.Records, z.Seconds)
		}
		fmt.Fprintf(tw, "\nreload took %.3fs; set built in %.1f µs, swapped in %.2f µs\n", r.Seconds, r.BuildMicros, r.SwapMicros)
		tw.Flush()
		for _, z := range r.Zones {
			if z.Status == control.StatusFailed {
				kept := "not served"
				if z.Serving {
					kept = fmt.Sprintf("serial %d still served", z.Serial)
				}
				fmt.Fprintf(w, "error: %s (%s)\n", z.Error, kept)
			}
		}
	case control.CmdZoneStatus:
		var zs []control.ZoneTransferStatus
		if err := json.Unmarshal(data, &zs); err != nil {
			return err
		}
		printZoneStatus(w, zs)
	case control.CmdRefresh, control.CmdRetransfer, control.CmdNotify:
		var r control.RefreshResult
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s: %s started; ringctl zone-status %s shows its outcome\n", r.Origin, r.Action, r.Origin)
	case control.CmdCookieRotate:
		var c control.CookieStatus
		if err := json.Unmarshal(data, &c); err != nil {
			return err
		}
		fmt.Fprintf(w, "cookie secret rotated: current %s, previous %s (still accepted)\n", c.Current, c.Previous)
		if !c.Enabled {
			fmt.Fprintf(w, "cookies are disabled (cookies.enabled = false): the secrets are kept for when they are enabled\n")
		}
	case control.CmdStats:
		var s control.Stats
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		fmt.Fprintf(tw, "WORKER\tKIND\tLISTEN\tCPU\tQUERIES\tREPLIES\tDROPS\tTC\tSEND ERRS\n")
		for _, x := range s.Workers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", x.Name, x.Kind, x.Listen, cpuString(x.CPU),
				x.Queries, x.Replies, sum(x.Drops), x.TC, x.SendErrs)
		}
		t := s.Total
		fmt.Fprintf(tw, "total\t\t\t\t%d\t%d\t%d\t%d\t%d\n", t.Queries, t.Replies, sum(t.Drops), t.TC, t.SendErrs)
		tw.Flush()
		fmt.Fprintf(w, "\nrcodes: %s\nkinds:  %s\ndrops:  %s\n", mapString(t.Rcodes), mapString(t.Kinds), mapString(t.Drops))
		fmt.Fprintf(w, "rrl:    limited %d (slipped %s; dropped %s)\ncookies: %s\n",
			sum(t.RRLSlipped)+sum(t.RRLDropped), mapString(t.RRLSlipped), mapString(t.RRLDropped), mapString(t.Cookies))
		fmt.Fprintf(w, "tcp:    %d accepted, %d open, %d refused over the bound, %d garbage, %d timed out\n",
			s.TCP.Accepted, s.TCP.Open, s.TCP.Refused, s.TCP.Garbage, s.TCP.Timeouts)
	}
	return nil
}

// printRSSAC prints a day's RSSAC002 documents to stdout as they are, for
// a file or a publication, and what they do not cover to stderr.
func printRSSAC(stdout, stderr io.Writer, data json.RawMessage) int {
	var r control.RSSACReport
	if err := json.Unmarshal(data, &r); err != nil {
		fmt.Fprintf(stderr, "ringctl: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, r.YAML)
	switch {
	case r.Since != "":
		fmt.Fprintf(stderr, "ringctl: %s so far, counted since ringdns started at %s\n", r.Date, r.Since)
	case r.Partial:
		fmt.Fprintf(stderr, "ringctl: %s so far\n", r.Date)
	}
	return 0
}

// printZoneStatus prints each zone's transfer state as a block of
// "name: value" lines, the form of knotc zone-status, since a secondary
// has more to say than fits a table row.
func printZoneStatus(w io.Writer, zs []control.ZoneTransferStatus) {
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		d := time.Until(t).Round(time.Second)
		rel := "in " + d.String()
		if d < 0 {
			rel = (-d).String() + " ago"
		}
		return t.Local().Format("2006-01-02 15:04:05") + " (" + rel + ")"
	}
	for i, z := range zs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		state := "served"
		switch {
		case z.Role == "secondary" && z.Expired && z.Serving:
			state = "expired: answered SERVFAIL"
		case z.Role == "secondary" && !z.Serving:
			state = "not yet transferred: answered SERVFAIL"
		case !z.Serving:
			state = "not served"
		}
		fmt.Fprintf(tw, "%s\t%s, serial %d, %s\n", z.Origin, z.Role, z.Serial, state)
		fmt.Fprintf(tw, "  file\t%s\n", z.File)
		if z.Catalog != "" {
			fmt.Fprintf(tw, "  catalog\tmember of %s\n", z.Catalog)
		}
		if z.CatalogMembers != nil {
			fmt.Fprintf(tw, "  catalog\t%d member zones\n", *z.CatalogMembers)
		}
		if z.ZONEMD != "" {
			fmt.Fprintf(tw, "  ZONEMD\t%s\n", z.ZONEMD)
		}
		if z.Role == "secondary" {
			key := z.Key
			if key == "" {
				key = "none"
			}
			fmt.Fprintf(tw, "  primaries\t%s (key %s)\n", strings.Join(z.Primaries, " "), key)
			fmt.Fprintf(tw, "  last refresh\t%s\n", when(z.LastRefresh))
			fmt.Fprintf(tw, "  next refresh\t%s\n", when(z.NextRefresh))
			fmt.Fprintf(tw, "  expires\t%s\n", when(z.Expires))
			if t := z.LastTransfer; t != nil {
				applied := ""
				if t.Applied != "" {
					applied = fmt.Sprintf(" (applied %s in %.3fs)", t.Applied, t.ApplySeconds)
				}
				fmt.Fprintf(tw, "  last transfer\t%s from %s at %s: %d bytes in %.3fs%s, %s\n", t.Kind, t.Primary,
					t.Started.Local().Format("2006-01-02 15:04:05"), t.Bytes, t.Seconds, applied, t.Result)
			}
			fmt.Fprintf(tw, "  counts\t%d transfers, %d failed refreshes, %d NOTIFY\n", z.Transfers, z.Failures, z.Notifies)
			if z.LastError != "" {
				fmt.Fprintf(tw, "  last error\t%s\n", z.LastError)
			}
		}
		tw.Flush()
	}
}

func cpuString(c int) string {
	if c < 0 {
		return "-"
	}
	return fmt.Sprint(c)
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func mapString(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
