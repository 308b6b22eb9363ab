package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
)

// MetricsHandler serves the Prometheus metrics of s: its own collector,
// which reads the worker counters and the catalog at scrape time (the data
// plane does no work for metrics), and the Go runtime and process
// collectors.
func MetricsHandler(s *Server) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s))
	reg.MustRegister(collectors.NewGoCollector())
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// metricsLimits bound the metrics endpoint, so that its clients cannot
// take the descriptors and goroutines the DNS service needs.
type metricsLimits struct {
	// maxConns bounds the connections open at once. A new connection over
	// it takes the place of the connection idle longest (between requests,
	// or connected and silent), and is refused at once only when every one
	// is carrying out a request, which the timeouts below bound.
	maxConns int
	// readHeader bounds the wait for a request's header from its first
	// byte, or from the connection's start; read the whole request; write
	// the reply; idle the wait for the next request on a kept-alive
	// connection.
	readHeader, read, write, idle time.Duration
}

// defaultMetricsLimits suit Prometheus: a scraper or two keep a connection
// each, ask once per scrape interval (a minute at most, usually, which the
// idle timeout covers) and read a reply of some kilobytes at once.
var defaultMetricsLimits = metricsLimits{
	maxConns:   16,
	readHeader: 5 * time.Second,
	read:       10 * time.Second,
	write:      30 * time.Second,
	idle:       90 * time.Second,
}

// serveMetrics makes the metrics endpoint's HTTP server for h on ln under
// lim. Serve the returned server on the returned listener, which bounds
// the connections; closing the server closes both.
func serveMetrics(ln net.Listener, h http.Handler, lim metricsLimits, log *slog.Logger) (net.Listener, *http.Server) {
	ml := &metricsListener{Listener: ln, lim: connLimits{max: lim.maxConns, evictIdle: true}, log: log}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		ConnState:         ml.connState,
		// What net/http logs comes from clients (bad requests and the
		// like): through the daemon's log, at most once per
		// acceptWarnPeriod.
		ErrorLog: slog.NewLogLogger(&limitedHandler{Handler: log.Handler(), every: acceptWarnPeriod}, slog.LevelWarn),
	}
	return ml, srv
}

// metricsListener bounds the connections of the metrics endpoint with a
// connSet whose entries net/http's ConnState hook marks idle and busy.
// Failed accepts are retried here, under connSet's back-off and its
// limited warnings, instead of by net/http, which logs each one.
type metricsListener struct {
	net.Listener
	lim   connLimits
	log   *slog.Logger
	conns connSet
}

// Accept returns the next connection admitted under the bound.
func (l *metricsListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.conns.retry.failed(l.log, l.Listener, err)
			continue
		}
		l.conns.retry.succeeded()
		e, _, victim := l.conns.admit(c, l.lim)
		if victim != nil {
			victim.Close()
		}
		if e == nil {
			c.Close()
			continue
		}
		return c, nil
	}
}

// connState follows net/http's view of each connection: new and idle ones
// may be closed to make room, active ones may not.
func (l *metricsListener) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew, http.StateIdle:
		l.conns.setConnIdle(c, true)
	case http.StateActive:
		l.conns.setConnIdle(c, false)
	case http.StateHijacked, http.StateClosed:
		l.conns.done(c)
	}
}

// limitedHandler passes at most one record per every to Handler and drops
// the rest: a client that provokes a log line per request cannot flood the
// log.
type limitedHandler struct {
	slog.Handler
	every time.Duration
	last  atomic.Int64 // UnixNano of the last record passed
}

func (h *limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	last, now := h.last.Load(), time.Now().UnixNano()
	if last != 0 && now-last < int64(h.every) || !h.last.CompareAndSwap(last, now) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// collector is a prometheus.Collector over a Server.
type collector struct {
	s *Server

	workerInfo, queries, replies, kinds, drops, tc, bytes, do, sendErrs *prometheus.Desc
	zoneSerial, zoneRecords, zoneBytes, zoneServing, zoneLoadSecs       *prometheus.Desc
	zoneAheadBytes                                                      *prometheus.Desc
	zoneLoads, zoneFailures                                             *prometheus.Desc
	reloads, reloadFailures, swapSecs, buildSecs                        *prometheus.Desc
	tcpConns, tcpOpen                                                   *prometheus.Desc
	xfrOut, xfrOutBytes, notifyOut, tsigFailures, tsigVerified          *prometheus.Desc
	xfrIn, xfrInBytes, xfrInSecs, notifyIn, zoneExpire, catalogMembers  *prometheus.Desc
	xfrInApplied                                                        *prometheus.Desc
	udpHandoff                                                          *prometheus.Desc
	cookies, badCookie                                                  *prometheus.Desc
	rrlLimited, rrlSlipped, rrlDropped                                  *prometheus.Desc
	dnstapSent, dnstapDropped                                           *prometheus.Desc
	xdp                                                                 []xdpMetric
}

// xdpMetric is one counter of an AF_XDP socket's statistics.
type xdpMetric struct {
	desc *prometheus.Desc
	get  func(*control.XDPStats) uint64
}

func newCollector(s *Server) *collector {
	w := []string{"worker"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ringdns_"+name, help, labels, nil)
	}
	return &collector{
		s:              s,
		workerInfo:     d("worker_info", "Data plane workers: kind (udp, tcp, xdp), listen address, CPU and queue.", "worker", "kind", "listen", "cpu", "queue"),
		queries:        d("queries_total", "Queries handed to the answer engine.", w...),
		replies:        d("replies_total", "Replies sent, by rcode.", "worker", "rcode"),
		kinds:          d("answers_total", "Replies by kind of answer.", "worker", "kind"),
		drops:          d("drops_total", "Queries dropped without a reply, by reason.", "worker", "reason"),
		tc:             d("truncated_total", "Replies sent truncated (TC=1).", w...),
		bytes:          d("reply_bytes_total", "Bytes of DNS replies sent.", w...),
		do:             d("do_queries_total", "Queries with the EDNS DO bit.", w...),
		sendErrs:       d("send_errors_total", "Replies the port failed to send.", w...),
		zoneSerial:     d("zone_serial", "SOA serial of the zone version served.", "zone"),
		zoneRecords:    d("zone_records", "Records of the zone version served.", "zone"),
		zoneBytes:      d("zone_memory_bytes", "Memory of the zone version served.", "zone"),
		zoneAheadBytes: d("zone_update_ahead_bytes", "Memory made ahead for the zone's next update (its node and NSEC3 arrays), held beside zone_memory_bytes.", "zone"),
		zoneServing:    d("zone_serving", "1 when a version of the zone is served.", "zone"),
		zoneLoadSecs:   d("zone_load_seconds", "Duration of the zone's last load attempt.", "zone"),
		zoneLoads:      d("zone_loads_total", "Versions of the zone built.", "zone"),
		zoneFailures:   d("zone_load_failures_total", "Failed loads of the zone.", "zone"),
		reloads:        d("reloads_total", "Reloads, including the initial load."),
		reloadFailures: d("reload_failures_total", "Reloads in which at least one zone failed."),
		swapSecs:       d("reload_swap_seconds", "Duration of the last snapshot pointer swap."),
		buildSecs:      d("reload_build_seconds", "Duration of building the last zone set and snapshot."),
		tcpConns:       d("tcp_connections_total", "TCP connections by outcome: accepted; refused (the table full of busy connections); per-source (the source's bound full of busy connections); evicted (closed idle to make room for a new one); garbage; timeout (idle, or a query incomplete).", "result"),
		tcpOpen:        d("tcp_open_connections", "TCP connections open."),
		xfrOut:         d("transfers_out_total", "Zone transfers out by kind (axfr; ixfr from the journal; ixfr-up-to-date, the SOA alone; ixfr-as-axfr, the whole zone; ixfr-udp, an IXFR over UDP answered with the SOA alone) and result (ok; refused by allow-transfer; notauth: zone not served or TSIG failed; busy: over transfers-max; formerr; aborted: the connection failed; servfail).", "kind", "result"),
		xfrOutBytes:    d("transfer_out_bytes_total", "Bytes of zone transfer messages sent, by kind.", "kind"),
		notifyOut:      d("notify_out_total", "NOTIFY messages sent by result: sent (answered NOERROR); failed (no answer after every attempt); rejected (answered with an error, or a reply whose TSIG failed).", "result"),
		tsigFailures:   d("tsig_failures_total", "Messages over TCP whose TSIG failed, by error (BADKEY, BADSIG, BADTIME, BADTRUNC, FORMERR).", "error"),
		tsigVerified:   d("tsig_verified_total", "Messages over TCP whose TSIG verified."),
		xfrIn:          d("transfers_in_total", "Zone transfers in by kind (axfr, ixfr; an IXFR answered with the whole zone counts as axfr) and result (ok; failed: broken off, TSIG, the zone checks, ZONEMD; the served version kept).", "kind", "result"),
		xfrInBytes:     d("transfer_in_bytes_total", "Bytes of zone transfer messages received, by kind.", "kind"),
		xfrInApplied:   d("transfers_in_ixfr_applied_total", "Incremental IXFRs in by how their differences were applied to the version served: incremental (in place), rebuilt (by Apply from the version's records), axfr-fallback (they did not apply, nothing of them was served, and the zone was transferred by AXFR).", "how"),
		xfrInSecs:      d("transfer_in_seconds_total", "Time spent in transfers in, from the request to the zone loaded, by kind.", "kind"),
		notifyIn:       d("notify_in_total", "NOTIFY messages received, by result: accepted (a refresh started), refused (allow-notify, primaries and key), notauth (not a secondary zone here).", "result"),
		zoneExpire:     d("zone_expire_seconds", "Seconds before a secondary zone expires and is answered SERVFAIL unless a primary confirms it; 0 once expired.", "zone"),
		udpHandoff:     d("udp_handoff_total", "UDP messages the workers handed to the control plane, by event: notify (a NOTIFY received), signed (a message with a TSIG record), tsig-failed (answered NOTAUTH or FORMERR), replied (a reply sent), send-error (a reply the system refused to send).", "event"),
		catalogMembers: d("catalog_members", "Member zones served from a catalog zone (RFC 9432), by catalog.", "zone"),
		cookies:        d("cookies_total", "Queries answered with a COOKIE option (RFC 7873), by what it held: client-only (a client cookie alone), valid (a valid server cookie), invalid (a server cookie not ours, expired or from the future), malformed (answered FORMERR).", "worker", "result"),
		badCookie:      d("badcookie_total", "Replies sent with BADCOOKIE (cookies.require: a UDP query with a COOKIE option but no valid server cookie).", w...),
		rrlLimited:     d("rrl_limited_total", "Replies response rate limiting held back (rrl.rate), by class: answer, referral, nodata, nxdomain, error; the sum of rrl_slipped_total and rrl_dropped_total.", "worker", "class"),
		rrlSlipped:     d("rrl_slipped_total", "Limited replies sent as an empty reply with TC=1 (rrl.slip), so that a real client retries over TCP, by class.", "worker", "class"),
		rrlDropped:     d("rrl_dropped_total", "Limited replies not sent at all, by class (also in drops_total, reason rrl).", "worker", "class"),
		dnstapSent:     d("dnstap_sent_total", "dnstap messages written to the collector or file, by worker (tcpN: a TCP server).", w...),
		dnstapDropped:  d("dnstap_dropped_total", "dnstap messages lost, by reason: ring-full (the worker's ring was full, or the exchange larger than a slot), output (no collector connected, or a write failed).", "worker", "reason"),
		xdp: []xdpMetric{
			{d("xdp_rx_packets_total", "Frames the AF_XDP socket handed to the worker.", w...), func(x *control.XDPStats) uint64 { return x.RxPackets }},
			{d("xdp_tx_packets_total", "Replies put on the AF_XDP TX ring.", w...), func(x *control.XDPStats) uint64 { return x.TxPackets }},
			{d("xdp_rx_dropped_total", "Frames the kernel dropped for the socket (XDP_STATISTICS rx_dropped).", w...), func(x *control.XDPStats) uint64 { return x.RxDropped }},
			{d("xdp_rx_ring_full_total", "Frames dropped because the RX ring was full.", w...), func(x *control.XDPStats) uint64 { return x.RxRingFull }},
			{d("xdp_fill_ring_empty_total", "Times the kernel found the fill ring empty.", w...), func(x *control.XDPStats) uint64 { return x.RxFillRingEmptyDescs }},
			{d("xdp_tx_ring_full_total", "Replies dropped because the TX ring was full.", w...), func(x *control.XDPStats) uint64 { return x.TxRingFull }},
			{d("xdp_invalid_descs_total", "Invalid RX and TX descriptors.", w...), func(x *control.XDPStats) uint64 { return x.RxInvalidDescs + x.TxInvalidDescs }},
			{d("xdp_tx_bad_length_total", "Replies dropped because their length exceeded the UMEM frame.", w...), func(x *control.XDPStats) uint64 { return x.TxBadLen }},
			{d("xdp_rx_bad_checksum_total", "Frames dropped because their UDP or IPv4 header checksum did not verify.", w...), func(x *control.XDPStats) uint64 { return x.RxBadChecksum }},
			{d("xdp_kick_errors_total", "TX wakeups (sendto) that failed with an unexpected error.", w...), func(x *control.XDPStats) uint64 { return x.KickErrors }},
		},
	}
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.workerInfo, c.queries, c.replies, c.kinds, c.drops, c.tc, c.bytes,
		c.do, c.sendErrs, c.zoneSerial, c.zoneRecords, c.zoneBytes, c.zoneAheadBytes, c.zoneServing, c.zoneLoadSecs, c.zoneLoads,
		c.zoneFailures, c.reloads, c.reloadFailures, c.swapSecs, c.buildSecs, c.tcpConns, c.tcpOpen,
		c.xfrOut, c.xfrOutBytes, c.notifyOut, c.tsigFailures, c.tsigVerified,
		c.xfrIn, c.xfrInBytes, c.xfrInSecs, c.notifyIn, c.zoneExpire, c.catalogMembers, c.udpHandoff, c.xfrInApplied,
		c.cookies, c.badCookie} {
		ch <- d
	}
	for _, m := range c.xdp {
		ch <- m.desc
	}
	ch <- c.rrlLimited
	ch <- c.rrlSlipped
	ch <- c.rrlDropped
	ch <- c.dnstapSent
	ch <- c.dnstapDropped
}

// alwaysRcodes are exported even at zero so that rate() works from the
// first scrape; other rcodes appear once seen.
var alwaysRcodes = [...]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true}

// Collect reads the counters.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, w := range c.s.workerCounters() {
		gauge(c.workerInfo, 1, w.Name, w.Kind, w.Listen, strconv.Itoa(w.CPU), strconv.Itoa(w.Queue))
		if w.XDP != nil {
			for _, m := range c.xdp {
				counter(m.desc, m.get(w.XDP), w.Name)
			}
		}
	}
	emit := func(name string, v dataplane.CounterValues) {
		counter(c.queries, v.Queries, name)
		for rc, n := range v.Rcodes {
			if n > 0 || (rc < len(alwaysRcodes) && alwaysRcodes[rc]) {
				counter(c.replies, n, name, RcodeName(rc))
			}
		}
		for k, n := range v.Kinds {
			if k != int(dataplane.KindDrop) {
				counter(c.kinds, n, name, dataplane.KindNames[k])
			}
		}
		for r, n := range v.Drops {
			if r != int(dataplane.DropNone) {
				counter(c.drops, n, name, dataplane.DropNames[r])
			}
		}
		counter(c.tc, v.TC, name)
		counter(c.bytes, v.Bytes, name)
		counter(c.do, v.DO, name)
		counter(c.sendErrs, v.SendErrs, name)
		for k := dataplane.CookieClientOnly; k < dataplane.NumCookieVerdicts; k++ {
			counter(c.cookies, v.Cookies[k], name, dataplane.CookieVerdictNames[k])
		}
		counter(c.badCookie, v.Rcodes[dataplane.RcodeBadCookie], name)
	}
	for _, w := range c.s.workers {
		v := w.counters.Values()
		emit(w.Name, v)
		for k, class := range dataplane.RRLClassNames {
			counter(c.rrlLimited, v.RRLSlipped[k]+v.RRLDropped[k], w.Name, class)
			counter(c.rrlSlipped, v.RRLSlipped[k], w.Name, class)
			counter(c.rrlDropped, v.RRLDropped[k], w.Name, class)
		}
	}
	for _, d := range c.s.dnstapCounts() {
		counter(c.dnstapSent, d.sent, d.name)
		counter(c.dnstapDropped, d.dropped, d.name, "ring-full")
		counter(c.dnstapDropped, d.lost, d.name, "output")
	}
	var ts control.TCPStats
	for i, t := range c.s.tcp {
		emit("tcp"+strconv.Itoa(i), t.counters.Values())
		ts.Add(t.srv.Stats())
	}
	counter(c.tcpConns, ts.Accepted, "accepted")
	counter(c.tcpConns, ts.Refused, "refused")
	counter(c.tcpConns, ts.PerSource, "per-source")
	counter(c.tcpConns, ts.Evicted, "evicted")
	counter(c.tcpConns, ts.Garbage, "garbage")
	counter(c.tcpConns, ts.Timeouts, "timeout")
	gauge(c.tcpOpen, float64(ts.Open))
	if x := c.s.xfr; x != nil {
		for k, kind := range xfrKinds {
			for r, result := range xfrResults {
				counter(c.xfrOut, x.stats.done[k][r].Load(), kind, result)
			}
			counter(c.xfrOutBytes, x.stats.bytes[k].Load(), kind)
		}
		for i, name := range tsigFailNames {
			counter(c.tsigFailures, x.stats.tsigFail[i].Load(), name)
		}
		counter(c.tsigVerified, x.stats.signed.Load())
	}
	if h := c.s.handoff; h != nil {
		hs := h.Stats()
		counter(c.udpHandoff, hs.Notifies, "notify")
		counter(c.udpHandoff, hs.Signed, "signed")
		counter(c.udpHandoff, hs.TSIGFailed, "tsig-failed")
		counter(c.udpHandoff, hs.Replies, "replied")
		counter(c.udpHandoff, hs.SendErrors, "send-error")
	}
	if c.s.notify != nil {
		sent, failed, rejected := c.s.notify.Counts()
		counter(c.notifyOut, sent, "sent")
		counter(c.notifyOut, failed, "failed")
		counter(c.notifyOut, rejected, "rejected")
	}

	xs := &c.s.Catalog.xfr.stats
	for k, kind := range xfrInKinds {
		for r, result := range xfrInResults {
			counter(c.xfrIn, xs.done[k][r].Load(), kind, result)
		}
		counter(c.xfrInBytes, xs.bytes[k].Load(), kind)
		ch <- prometheus.MustNewConstMetric(c.xfrInSecs, prometheus.CounterValue, float64(xs.nanos[k].Load())/1e9, kind)
	}
	for i, how := range ixfrApplied {
		counter(c.xfrInApplied, xs.applied[i].Load(), how)
	}
	for i, result := range notifyResults {
		counter(c.notifyIn, xs.notify[i].Load(), result)
	}
	for _, x := range c.s.Catalog.expiries() {
		gauge(c.zoneExpire, x.left.Seconds(), x.origin)
	}
	for _, m := range c.s.Catalog.catalogCounts() {
		gauge(c.catalogMembers, float64(m.n), m.origin)
	}

	for _, z := range c.s.Catalog.Zones() {
		serving := 0.0
		if z.Serving {
			serving = 1
			gauge(c.zoneSerial, float64(z.Serial), z.Origin)
			gauge(c.zoneRecords, float64(z.Records), z.Origin)
			gauge(c.zoneBytes, float64(z.Bytes), z.Origin)
			gauge(c.zoneAheadBytes, float64(z.AheadBytes), z.Origin)
		}
		gauge(c.zoneServing, serving, z.Origin)
		gauge(c.zoneLoadSecs, z.Seconds, z.Origin)
		counter(c.zoneLoads, z.Loads, z.Origin)
		counter(c.zoneFailures, z.Failures, z.Origin)
	}
	reloads, failures, build, swap := c.s.Catalog.ReloadCounts()
	counter(c.reloads, reloads)
	counter(c.reloadFailures, failures)
	gauge(c.swapSecs, swap.Seconds())
	gauge(c.buildSecs, build.Seconds())
}
