package loadgen

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Result is what a run measured. Its JSON form is ringperf's -json output.
type Result struct {
	Sent        uint64            `json:"sent"`
	Answered    uint64            `json:"answered"`
	Lost        uint64            `json:"lost"`
	Loss        float64           `json:"loss"`
	Seconds     float64           `json:"seconds"` // first send to last send
	SentQPS     float64           `json:"sent_qps"`
	AnsweredQPS float64           `json:"answered_qps"`
	Rcodes      map[string]uint64 `json:"rcodes"`
	Truncated   uint64            `json:"truncated"`
	ReplyBytes  uint64            `json:"reply_bytes"`
	Unmatched   uint64            `json:"unmatched"`
	Malformed   uint64            `json:"malformed"`
	Latency     Latency           `json:"latency_us"`
	Queues      []QueueResult     `json:"queues"`
	// Ring counts the generator's own AF_XDP losses, read from its
	// sockets by the caller: replies the kernel could not put in an RX
	// ring, which count as lost queries although the server answered.
	Ring     RingStats `json:"ring"`
	Mode     string    `json:"mode,omitempty"`
	ZeroCopy bool      `json:"zero_copy"`
	// Spoof splits a spoofed run (ringperf -spoof): the queries from the
	// spoofed prefix and from the own address, and their replies.
	Spoof *SpoofResult `json:"spoof,omitempty"`
}

// SpoofResult is the split of a spoofed run.
type SpoofResult struct {
	Prefix  string      `json:"prefix"`
	Spoofed SourceStats `json:"spoofed"`
	Own     SourceStats `json:"own"`
	// QueryBytes is the DNS payload bytes of the spoofed queries sent,
	// against which ReplyBytes measure the amplification.
	QueryBytes    uint64  `json:"query_bytes"`
	Amplification float64 `json:"amplification"`
}

// Latency holds microseconds from a query's send to its reply's receipt,
// as the generator sees them (batch by batch: each batch shares one send
// time and one receive time).
type Latency struct {
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// RingStats are the generator's sockets' kernel statistics, summed.
type RingStats struct {
	RxDropped  uint64 `json:"rx_dropped"`
	RxRingFull uint64 `json:"rx_ring_full"`
	FillEmpty  uint64 `json:"fill_ring_empty"`
	TxInvalid  uint64 `json:"tx_invalid"`
	KickErrors uint64 `json:"kick_errors"`
	TxRingFull uint64 `json:"tx_ring_full"`
}

// QueueResult is one thread's share: what it sent, and the replies that
// arrived on its queue.
type QueueResult struct {
	Queue    int    `json:"queue"`
	CPU      int    `json:"cpu"`
	Sent     uint64 `json:"sent"`
	Answered uint64 `json:"answered"`
}

var rcodeNames = [16]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", "RCODE12", "RCODE13", "RCODE14", "RCODE15"}

func (r *Run) result() Result {
	var res Result
	var h Histogram
	first, last := int64(-1), int64(0)
	var rc [16]uint64
	for _, t := range r.threads {
		s := &t.stats
		res.Sent += s.Sent
		res.Answered += s.Answered
		res.Unmatched += s.Unmatched
		res.Malformed += s.Malformed
		res.Truncated += s.Truncated
		res.ReplyBytes += s.ReplyBytes
		for i, c := range s.Rcodes {
			rc[i] += c
		}
		h.Merge(&t.hist)
		if s.FirstSend >= 0 && (first < 0 || s.FirstSend < first) {
			first = s.FirstSend
		}
		last = max(last, s.LastSend)
		res.Queues = append(res.Queues, QueueResult{Queue: t.index, CPU: -1, Sent: s.Sent, Answered: s.Answered})
		if p := r.frames.spoof; p.IsValid() {
			if res.Spoof == nil {
				res.Spoof = &SpoofResult{Prefix: p.String()}
			}
			res.Spoof.Spoofed.add(s.Spoofed)
			res.Spoof.Own.add(s.Own)
			res.Spoof.QueryBytes += uint64(float64(s.Spoofed.Sent) * r.frames.avgPayload())
		}
	}
	if sp := res.Spoof; sp != nil && sp.QueryBytes > 0 {
		sp.Amplification = float64(sp.Spoofed.ReplyBytes) / float64(sp.QueryBytes)
	}
	res.Rcodes = map[string]uint64{}
	for i, c := range rc {
		if c > 0 {
			res.Rcodes[rcodeNames[i]] = c
		}
	}
	if res.Sent >= res.Answered {
		res.Lost = res.Sent - res.Answered
	}
	if res.Sent > 0 {
		res.Loss = float64(res.Lost) / float64(res.Sent)
	}
	if first >= 0 {
		// The last send opens one more interval at the rate: n sends span
		// n intervals, so a one-batch run does not divide by zero.
		span := float64(last-first) / 1e9
		if res.Sent > 1 {
			span *= float64(res.Sent) / float64(res.Sent-1)
		}
		res.Seconds = span
		if span > 0 {
			res.SentQPS = float64(res.Sent) / span
			res.AnsweredQPS = float64(res.Answered) / span
		}
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	res.Latency = Latency{
		Min: us(h.Min()), P50: us(h.Quantile(0.50)), P90: us(h.Quantile(0.90)),
		P99: us(h.Quantile(0.99)), P999: us(h.Quantile(0.999)), Max: us(h.Max()),
	}
	return res
}

// WriteTable writes res for people.
func (res Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "sent\t%d\t%.0f/s over %.3f s\n", res.Sent, res.SentQPS, res.Seconds)
	fmt.Fprintf(tw, "answered\t%d\t%.0f/s\n", res.Answered, res.AnsweredQPS)
	fmt.Fprintf(tw, "lost\t%d\t%.3f%%\n", res.Lost, 100*res.Loss)
	var names []string
	for n := range res.Rcodes {
		names = append(names, n)
	}
	sort.Strings(names)
	var rc []string
	for _, n := range names {
		rc = append(rc, fmt.Sprintf("%s %d", n, res.Rcodes[n]))
	}
	fmt.Fprintf(tw, "rcodes\t%s\t\n", strings.Join(rc, ", "))
	fmt.Fprintf(tw, "truncated (TC)\t%d\t\n", res.Truncated)
	avg := 0.0
	if res.Answered > 0 {
		avg = float64(res.ReplyBytes) / float64(res.Answered)
	}
	fmt.Fprintf(tw, "reply bytes\t%d\t%.1f per reply\n", res.ReplyBytes, avg)
	if g := res.Ring; g != (RingStats{}) {
		fmt.Fprintf(tw, "generator ring losses\trx dropped %d, rx ring full %d, fill ring empty %d, tx invalid %d, kick errors %d\t\n",
			g.RxDropped, g.RxRingFull, g.FillEmpty, g.TxInvalid, g.KickErrors)
	}
	if res.Unmatched+res.Malformed > 0 {
		fmt.Fprintf(tw, "unmatched replies\t%d\t%d malformed frames\n", res.Unmatched, res.Malformed)
	}
	if sp := res.Spoof; sp != nil {
		fmt.Fprintf(tw, "spoofed from %s	sent %d, answered %d (TC %d), %d reply bytes	amplification %.3f\n",
			sp.Prefix, sp.Spoofed.Sent, sp.Spoofed.Answered, sp.Spoofed.Truncated, sp.Spoofed.ReplyBytes, sp.Amplification)
		fmt.Fprintf(tw, "from the own address	sent %d, answered %d (TC %d), %d reply bytes	\n",
			sp.Own.Sent, sp.Own.Answered, sp.Own.Truncated, sp.Own.ReplyBytes)
	}
	l := res.Latency
	fmt.Fprintf(tw, "latency µs\tmin %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\t\n", l.Min, l.P50, l.P90, l.P99, l.P999, l.Max)
	for _, q := range res.Queues {
		cpu := "unpinned"
		if q.CPU >= 0 {
			cpu = fmt.Sprintf("cpu %d", q.CPU)
		}
		fmt.Fprintf(tw, "queue %d\tsent %d, answered here %d\t%s\n", q.Queue, q.Sent, q.Answered, cpu)
	}
	return tw.Flush()
}

func (s *SourceStats) add(o SourceStats) {
	s.Sent += o.Sent
	s.Answered += o.Answered
	s.Truncated += o.Truncated
	s.ReplyBytes += o.ReplyBytes
}
