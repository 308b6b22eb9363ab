package controlplane

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
)

// RSSACConfig is the [rssac002] table: the daily statistics of RSSAC002
// version 3 (traffic-volume, traffic-sizes, rcode-volume, unique-sources,
// load-time). Without the table nothing is counted.
type RSSACConfig struct {
	// Service is the name the documents report as their service, the
	// instance's name as RSSAC002 wants it (a.root-servers.net).
	Service string `toml:"service"`
	// Dir is where each finished day's documents are written, one file
	// per metric as RSSAC002 names them (YYYY/MM/METRIC/SERVICE-YYYYMMDD-
	// METRIC.yaml); empty writes none and keeps KeepDays days in memory.
	Dir string `toml:"dir"`
	// KeepDays is how many finished days are kept, on disk and in memory.
	KeepDays int `toml:"keep-days"`
	// Zone is the zone whose transfers in load-time reports.
	Zone string `toml:"zone"`
}

// DefaultRSSACKeepDays is rssac002.keep-days when absent.
const DefaultRSSACKeepDays = 30

func (r *RSSACConfig) normalize() []error {
	if r == nil {
		return nil
	}
	var errs []error
	if r.Service == "" {
		errs = append(errs, errors.New("rssac002.service: missing: the name the documents report, such as a.root-servers.net"))
	}
	if strings.ContainsAny(r.Service, "/: \t\n") {
		errs = append(errs, fmt.Errorf("rssac002.service %q: no slash, colon or space (it names files)", r.Service))
	}
	if r.KeepDays == 0 {
		r.KeepDays = DefaultRSSACKeepDays
	}
	if r.KeepDays < 1 || r.KeepDays > 3660 {
		errs = append(errs, fmt.Errorf("rssac002.keep-days %d: must be 1 to 3660", r.KeepDays))
	}
	if r.Zone == "" {
		r.Zone = "."
	}
	r.Zone = CanonicalOrigin(r.Zone)
	return errs
}

// rssacGrace is how long after switching the workers to the next day's
// sketches the day that ended is read and its sketches cleared: a worker
// switches at its next batch and finishes the batch in hand within
// microseconds, unless the machine stalls it for this long, in which case
// a few of its sources are lost to both days. Its counts are not: they are
// cumulative, and a batch counted late is counted in the next day.
var rssacGrace = 2 * time.Second

// rssacStats collects the RSSAC002 statistics of every worker and TCP
// server, rolls the day over at 00:00 UTC and keeps the finished days.
type rssacStats struct {
	cfg *RSSACConfig
	log *slog.Logger
	key dataplane.RSSACKey
	now func() time.Time

	// udp are the workers' (sockets and AF_XDP), tcp the TCP servers'.
	udp, tcp []*dataplane.RSSAC

	mu      sync.Mutex
	day     time.Time   // the UTC midnight that began the day counted now
	since   time.Time   // when counting began, if after day
	base    rssacCounts // the cumulative counts when the day began
	cur     uint32      // the set of sketches the workers write into
	loads   []rssacLoad // the day's transfers in of cfg.Zone
	kept    map[string]string
	keptOrd []string
}

// rssacLoad is one version of the zone loaded: its serial and the seconds
// from noticing the new serial to serving it.
type rssacLoad struct {
	serial  uint32
	seconds float64
}

// rssacCounts are the cumulative counts of every worker and TCP server,
// indexed by transport (0 UDP, 1 TCP) and family.
type rssacCounts struct {
	queries, responses [2][2]uint64
	req, resp          [2][dataplane.RSSACSizeBins]uint64
	rcodes             [dataplane.RSSACRcodes]uint64
}

func newRSSACStats(cfg *RSSACConfig, log *slog.Logger) (*rssacStats, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("rssac002: drawing the key of the source sketches: %w", err)
	}
	r := &rssacStats{cfg: cfg, log: log, now: time.Now, kept: map[string]string{}}
	for i := range r.key {
		r.key[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	now := r.now().UTC()
	r.day, r.since = now.Truncate(24*time.Hour), now
	return r, nil
}

// newCounter returns a new RSSAC for a worker (tcp false) or a TCP server.
func (r *rssacStats) newCounter(tcp bool) *dataplane.RSSAC {
	c := dataplane.NewRSSAC(r.key)
	if tcp {
		r.tcp = append(r.tcp, c)
	} else {
		r.udp = append(r.udp, c)
	}
	return c
}

// read sums the cumulative counts.
func (r *rssacStats) read() *rssacCounts {
	c := new(rssacCounts)
	for t, list := range [2][]*dataplane.RSSAC{r.udp, r.tcp} {
		for _, w := range list {
			for f := range 2 {
				c.queries[t][f] += w.Queries[f].Load()
				c.responses[t][f] += w.Responses[f].Load()
			}
			for i := range w.RequestSizes {
				c.req[t][i] += w.RequestSizes[i].Load()
				c.resp[t][i] += w.ResponseSizes[i].Load()
			}
			for i := range w.Rcodes {
				c.rcodes[i] += w.Rcodes[i].Load()
			}
		}
	}
	return c
}

// sub subtracts the counts at the day's start.
func (c *rssacCounts) sub(b *rssacCounts) {
	for t := range 2 {
		for f := range 2 {
			c.queries[t][f] -= b.queries[t][f]
			c.responses[t][f] -= b.responses[t][f]
		}
		for i := range c.req[t] {
			c.req[t][i] -= b.req[t][i]
			c.resp[t][i] -= b.resp[t][i]
		}
	}
	for i := range c.rcodes {
		c.rcodes[i] -= b.rcodes[i]
	}
}

// sources estimates the sources of sketch set d of every counter.
func (r *rssacStats) sources(d uint32) (v4, v6, agg uint64) {
	var a, b, c dataplane.Registers
	for _, w := range append(r.udp[:len(r.udp):len(r.udp)], r.tcp...) {
		s := &w.Sketches[d&1]
		s.IPv4.MergeInto(&a)
		s.IPv6.MergeInto(&b)
		s.IPv6Agg.MergeInto(&c)
	}
	round := func(x float64) uint64 { return uint64(math.Round(x)) }
	return round(a.Estimate()), round(b.Estimate()), round(c.Estimate())
}

// loadTime records that serial of origin was served d after its primary's
// new serial was noticed (xfrin.go).
func (r *rssacStats) loadTime(origin string, serial uint32, d time.Duration) {
	if origin != r.cfg.Zone {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loads = append(r.loads, rssacLoad{serial, d.Seconds()})
}

// run rolls the day over at each 00:00 UTC until done is closed. It wakes
// at least once a minute and compares the wall clock, so that a clock
// set while it sleeps moves the roll-over with it.
func (r *rssacStats) run(done <-chan struct{}) {
	for {
		r.mu.Lock()
		next := r.day.Add(24 * time.Hour)
		r.mu.Unlock()
		wait := min(next.Sub(r.now()), time.Minute)
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		r.roll(next)
	}
}

// roll ends the day counted and begins the one starting at next: the
// workers switch sketches, the counts so far become the base of the new
// day, and after rssacGrace the ended day's sketches are estimated and
// cleared and its documents kept and written.
func (r *rssacStats) roll(next time.Time) {
	r.mu.Lock()
	old := r.cur
	r.cur ^= 1
	for _, w := range append(r.udp[:len(r.udp):len(r.udp)], r.tcp...) {
		w.Day.Store(r.cur)
	}
	c := r.read()
	counts := *c
	counts.sub(&r.base)
	r.base = *c
	day, since, loads := r.day, r.since, r.loads
	r.day, r.since, r.loads = next, next, nil
	r.mu.Unlock()

	time.Sleep(rssacGrace)
	v4, v6, agg := r.sources(old)
	for _, w := range append(r.udp[:len(r.udp):len(r.udp)], r.tcp...) {
		w.Sketches[old].Reset()
	}
	doc := r.documents(day, &counts, v4, v6, agg, loads)
	date := day.Format(time.DateOnly)
	r.mu.Lock()
	r.keep(date, doc)
	r.mu.Unlock()
	if since.After(day) {
		r.log.Info("RSSAC002 day finished; ringdns started during it, so its counts begin then", "date", date, "since", since.Format(time.RFC3339))
	} else {
		r.log.Info("RSSAC002 day finished", "date", date)
	}
	if r.cfg.Dir != "" {
		if err := r.write(day, doc); err != nil {
			r.log.Error("writing the RSSAC002 documents", "date", date, "dir", r.cfg.Dir, "err", err)
		}
		if err := r.prune(next); err != nil {
			r.log.Error("removing RSSAC002 documents older than rssac002.keep-days", "dir", r.cfg.Dir, "err", err)
		}
	}
}

// keep holds a finished day's documents in memory, keep-days of them.
// Call with r.mu held.
func (r *rssacStats) keep(date, doc string) {
	if _, ok := r.kept[date]; !ok {
		r.keptOrd = append(r.keptOrd, date)
	}
	r.kept[date] = doc
	for len(r.keptOrd) > r.cfg.KeepDays {
		delete(r.kept, r.keptOrd[0])
		r.keptOrd = r.keptOrd[1:]
	}
}

// today returns the documents of the day so far.
func (r *rssacStats) today() (time.Time, time.Time, string) {
	r.mu.Lock()
	c := r.read()
	c.sub(&r.base)
	day, since, cur := r.day, r.since, r.cur
	loads := append([]rssacLoad(nil), r.loads...)
	r.mu.Unlock()
	v4, v6, agg := r.sources(cur)
	return day, since, r.documents(day, c, v4, v6, agg, loads)
}

// rssacMetrics are the metrics written, in the order of RSSAC002's
// section 4 (zone-size is the root zone maintainer's alone).
var rssacMetrics = []string{"load-time", "traffic-volume", "traffic-sizes", "rcode-volume", "unique-sources"}

// documents renders a day's documents in RSSAC002 version 3's YAML, as
// dnscap's rssm plugin writes them: one document per metric, each
// beginning with "---" and its version, service, start-period and metric.
func (r *rssacStats) documents(day time.Time, c *rssacCounts, v4, v6, agg uint64, loads []rssacLoad) string {
	var b strings.Builder
	head := func(metric string) {
		fmt.Fprintf(&b, "---\nversion: rssac002v3\nservice: %s\nstart-period: %s\nmetric: %s\n",
			r.cfg.Service, day.UTC().Format("2006-01-02T15:04:05Z"), metric)
	}
	for _, m := range rssacMetrics {
		head(m)
		switch m {
		case "load-time":
			// A serial loaded twice in the day (a retransfer) keeps the
			// first time.
			seen := map[uint32]bool{}
			for _, l := range loads {
				if !seen[l.serial] {
					seen[l.serial] = true
					fmt.Fprintf(&b, "%d: %d\n", l.serial, int64(math.Ceil(l.seconds)))
				}
			}
		case "traffic-volume":
			for _, k := range []struct {
				name string
				v    uint64
			}{
				{"dns-udp-queries-received-ipv4", c.queries[0][0]},
				{"dns-udp-queries-received-ipv6", c.queries[0][1]},
				{"dns-tcp-queries-received-ipv4", c.queries[1][0]},
				{"dns-tcp-queries-received-ipv6", c.queries[1][1]},
				{"dns-udp-responses-sent-ipv4", c.responses[0][0]},
				{"dns-udp-responses-sent-ipv6", c.responses[0][1]},
				{"dns-tcp-responses-sent-ipv4", c.responses[1][0]},
				{"dns-tcp-responses-sent-ipv6", c.responses[1][1]},
			} {
				fmt.Fprintf(&b, "%s: %d\n", k.name, k.v)
			}
		case "traffic-sizes":
			for _, h := range []struct {
				name string
				bins *[dataplane.RSSACSizeBins]uint64
			}{
				{"udp-request-sizes", &c.req[0]},
				{"udp-response-sizes", &c.resp[0]},
				{"tcp-request-sizes", &c.req[1]},
				{"tcp-response-sizes", &c.resp[1]},
			} {
				writeBins(&b, h.name, h.bins)
			}
		case "rcode-volume":
			for rc, n := range c.rcodes {
				if n != 0 {
					fmt.Fprintf(&b, "%d: %d\n", rc, n)
				}
			}
		case "unique-sources":
			fmt.Fprintf(&b, "num-sources-ipv4: %d\nnum-sources-ipv6: %d\nnum-sources-ipv6-aggregate: %d\n", v4, v6, agg)
		}
	}
	return b.String()
}

// writeBins writes a size distribution as a mapping of its non-empty
// bins, "0-15", "16-31", ..., or {} when all are empty.
func writeBins(b *strings.Builder, name string, bins *[dataplane.RSSACSizeBins]uint64) {
	empty := true
	for i, n := range bins {
		if n == 0 {
			continue
		}
		if empty {
			fmt.Fprintf(b, "%s:\n", name)
			empty = false
		}
		fmt.Fprintf(b, "  %d-%d: %d\n", 16*i, 16*i+15, n)
	}
	if empty {
		fmt.Fprintf(b, "%s: {}\n", name)
	}
}

// rssacFile is where a day's document of metric goes under the
// directory, as RSSAC002 section 5 lays out a publication:
// YYYY/MM/METRIC/SERVICE-YYYYMMDD-METRIC.yaml.
func (r *rssacStats) rssacFile(day time.Time, metric string) string {
	return filepath.Join(r.cfg.Dir, day.Format("2006"), day.Format("01"), metric,
		r.cfg.Service+"-"+day.Format("20060102")+"-"+metric+".yaml")
}

// write writes each metric's document of a day to its file, each through
// a temporary file renamed into place, so that a reader never sees half.
func (r *rssacStats) write(day time.Time, doc string) error {
	docs := strings.Split(doc, "---\n")[1:]
	for i, m := range rssacMetrics {
		name := r.rssacFile(day, m)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		tmp := name + ".tmp"
		if err := os.WriteFile(tmp, []byte("---\n"+docs[i]), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, name); err != nil {
			return err
		}
	}
	return nil
}

var rssacName = regexp.MustCompile(`-(\d{8})-[a-z-]+\.yaml$`)

// prune removes the documents of days more than keep-days before today,
// and the directories left empty.
func (r *rssacStats) prune(today time.Time) error {
	cutoff := today.AddDate(0, 0, -r.cfg.KeepDays).Format("20060102")
	var dirs []string
	err := filepath.WalkDir(r.cfg.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != r.cfg.Dir {
				dirs = append(dirs, path)
			}
			return nil
		}
		m := rssacName.FindStringSubmatch(d.Name())
		if m != nil && strings.HasPrefix(d.Name(), r.cfg.Service+"-") && m[1] < cutoff {
			return os.Remove(path)
		}
		return nil
	})
	// Deepest first; a directory that is not empty stays.
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		os.Remove(d)
	}
	return err
}

// report answers ringctl rssac002: the day so far without a date, else a
// finished day's documents from memory or from the directory.
func (r *rssacStats) report(date string) (control.RSSACReport, error) {
	if date == "" {
		day, since, doc := r.today()
		rep := control.RSSACReport{Date: day.Format(time.DateOnly), YAML: doc, Partial: true}
		if since.After(day) {
			rep.Since = since.Format(time.RFC3339)
		}
		return rep, nil
	}
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return control.RSSACReport{}, fmt.Errorf("rssac002: date %q: want YYYY-MM-DD", date)
	}
	r.mu.Lock()
	doc, ok := r.kept[date]
	cur := r.day
	r.mu.Unlock()
	if day.Equal(cur) {
		return r.report("")
	}
	if ok {
		return control.RSSACReport{Date: date, YAML: doc}, nil
	}
	if r.cfg.Dir != "" {
		var b strings.Builder
		for _, m := range rssacMetrics {
			data, err := os.ReadFile(r.rssacFile(day, m))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					break
				}
				return control.RSSACReport{}, fmt.Errorf("rssac002: %w", err)
			}
			b.Write(data)
		}
		if b.Len() > 0 {
			return control.RSSACReport{Date: date, YAML: b.String()}, nil
		}
	}
	where := "in memory (rssac002.dir is not set)"
	if r.cfg.Dir != "" {
		where = "in " + r.cfg.Dir
	}
	return control.RSSACReport{}, fmt.Errorf("rssac002: no documents for %s %s: ringdns was not running that day, or it is older than rssac002.keep-days (%d)", date, where, r.cfg.KeepDays)
}

// handleRSSAC carries out ringctl rssac002.
func (s *Server) handleRSSAC(req control.Request) control.Reply {
	if s.rssac == nil {
		return control.Reply{Error: "RSSAC002 statistics are off: add an [rssac002] table with service = \"NAME\" to the configuration and restart"}
	}
	if len(req.Zones) > 1 {
		return control.Reply{Error: "rssac002 takes at most a date (YYYY-MM-DD)"}
	}
	date := ""
	if len(req.Zones) == 1 {
		date = req.Zones[0]
	}
	rep, err := s.rssac.report(date)
	if err != nil {
		return control.Reply{Error: err.Error()}
	}
	return control.OKReply(rep)
}

// rssacCounter returns a new RSSAC for a worker (tcp false) or a TCP
// server, nil when the statistics are off.
func (s *Server) rssacCounter(tcp bool) *dataplane.RSSAC {
	if s.rssac == nil {
		return nil
	}
	return s.rssac.newCounter(tcp)
}
