package loadgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringdns/ringdns/nic"
)

// Each thread cycles through portsPerThread source ports and all 65,536 IDs
// on each: its table has a slot for each pair, and the pair of the query
// numbered seq is (seq mod portsPerThread, seq / portsPerThread mod 2^16),
// so that consecutive queries leave from different ports (a NIC's RSS
// spreads them over the server's queues) and the slot of seq is simply seq
// mod tableSize. A query unanswered after tableSize more sends from its
// thread (0.9 s at a million queries per second) loses its slot and counts
// as lost.
const (
	portsBits      = 4
	portsPerThread = 1 << portsBits
	tableSize      = portsPerThread << 16
	// MaxBatch bounds the packets per Alloc and per Poll.
	MaxBatch = 256
	// minPace is the shortest sleep between batches at a fixed rate.
	minPace = 50 * time.Microsecond
)

// Config says how much to send, and how.
type Config struct {
	// Rate is queries per second over all threads; 0 sends flat out.
	Rate float64
	// Count bounds the queries over all threads; 0 leaves only Duration.
	Count uint64
	// Duration bounds the sending; it must be positive.
	Duration time.Duration
	// Timeout is how long the threads wait for replies after their last
	// send; 0 means one second.
	Timeout time.Duration
	// Random picks each query at random; otherwise the threads go through
	// the file in order, each from its own starting point.
	Random bool
	// Seed seeds the random order.
	Seed uint64
	// BasePort is the first source port; thread i uses the 16 ports from
	// BasePort+16i. 0 means 40000.
	BasePort uint16
	// Batch is the packets per Alloc and per Poll, at most MaxBatch; 0
	// means 64.
	Batch int
	// Pin, when set, is called on each thread's locked OS thread before it
	// starts, to pin it to a CPU.
	Pin func(thread int) error
	// OwnEvery, when the frames are spoofed (Frames.Spoof), sends every
	// OwnEvery-th query of a thread from the frames' own source address,
	// a real client beside the flood, whose replies are counted apart
	// (Result.Spoof); 0 spoofs every query.
	OwnEvery uint64
	// OwnFrames, when set, are the queries sent from the own address (for
	// example with a DNS cookie, Options.Cookie), in place of the frames;
	// they must have the same addresses.
	OwnFrames *Frames
}

// Run is one load generation over a set of ports, one thread each.
type Run struct {
	cfg     Config
	frames  *Frames
	threads []*Thread
	start   time.Time
	stop    atomic.Bool
	sending atomic.Int32 // threads still sending
	wg      sync.WaitGroup
	begun   bool
}

// Thread drives one port. Its counters are written by its own goroutine
// only; Run.Progress reads the two atomic ones.
type Thread struct {
	run      *Run
	index    int
	port     nic.Originator
	portBase uint16
	quota    uint64 // queries to send; all ones when unbounded
	// slots holds, for each (port, ID) pair, 1 + the send time in ns
	// since the start of the query in flight with it, or 0. The thread
	// stores into its own table on send; whichever thread receives the
	// reply takes the slot with Swap.
	slots []atomic.Uint64

	seq  uint64 // queries sent
	next int    // next frame, in sequential order
	rng  uint64 // xorshift state, in random order
	host uint64 // xorshift state of the spoofed sources' host bits

	stats    Stats
	hist     Histogram
	sentA    atomic.Uint64
	answered atomic.Uint64
	err      error
}

// Stats are one thread's counts.
type Stats struct {
	Sent       uint64
	Answered   uint64 // replies matched to a query in flight
	Unmatched  uint64 // replies that matched none (late, duplicated, foreign)
	Malformed  uint64 // frames too short or not IP/UDP
	Truncated  uint64 // answered with TC set
	ReplyBytes uint64 // DNS payload bytes of the answered replies
	Overwrite  uint64 // queries whose slot was reused before a reply came
	Rcodes     [16]uint64
	FirstSend  int64 // ns since the start; -1 when nothing was sent
	LastSend   int64
	// Own and Spoofed split the counts of a spoofed run (Frames.Spoof):
	// the queries from the own address and their replies, and the others.
	Own, Spoofed SourceStats
}

// SourceStats count the queries of one kind of source and their replies.
type SourceStats struct {
	Sent       uint64 `json:"sent"`
	Answered   uint64 `json:"answered"`
	Truncated  uint64 `json:"truncated"`
	ReplyBytes uint64 `json:"reply_bytes"`
}

// NewRun prepares a run that sends frames through ports, one thread each.
func NewRun(cfg Config, frames *Frames, ports []nic.Originator) (*Run, error) {
	if cfg.Duration <= 0 {
		return nil, errors.New("loadgen: the duration must be positive")
	}
	if cfg.Rate < 0 {
		return nil, errors.New("loadgen: negative rate")
	}
	if len(ports) == 0 {
		return nil, errors.New("loadgen: no ports")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.BasePort == 0 {
		cfg.BasePort = 40000
	}
	if int(cfg.BasePort)+len(ports)*portsPerThread > 65536 {
		return nil, fmt.Errorf("loadgen: %d threads need %d source ports from %d", len(ports), len(ports)*portsPerThread, cfg.BasePort)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	cfg.Batch = min(cfg.Batch, MaxBatch)
	r := &Run{cfg: cfg, frames: frames}
	for i, p := range ports {
		t := &Thread{
			run:      r,
			index:    i,
			port:     p,
			portBase: cfg.BasePort + uint16(i*portsPerThread),
			slots:    make([]atomic.Uint64, tableSize),
			next:     i * frames.Len() / len(ports),
			rng:      cfg.Seed*0x9e3779b97f4a7c15 + uint64(i+1)*0xbf58476d1ce4e5b9 | 1,
			host:     cfg.Seed*0xbf58476d1ce4e5b9 + uint64(i+1)*0x94d049bb133111eb | 1,
		}
		t.quota = ^uint64(0)
		if cfg.Count > 0 {
			t.quota = cfg.Count / uint64(len(ports))
			if uint64(i) < cfg.Count%uint64(len(ports)) {
				t.quota++
			}
		}
		t.stats.FirstSend = -1
		r.threads = append(r.threads, t)
	}
	return r, nil
}

// Start starts the threads.
func (r *Run) Start() {
	r.start = time.Now()
	r.begun = true
	r.sending.Store(int32(len(r.threads)))
	for _, t := range r.threads {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			preciseTimers()
			if r.cfg.Pin != nil {
				if err := r.cfg.Pin(t.index); err != nil {
					t.err = err
					r.sending.Add(-1)
					return
				}
			}
			t.loop()
		}()
	}
}

// Stop ends the sending at once; the threads still wait for replies until
// the timeout.
func (r *Run) Stop() { r.stop.Store(true) }

// Progress returns the queries sent and answered so far.
func (r *Run) Progress() (sent, answered uint64) {
	for _, t := range r.threads {
		sent += t.sentA.Load()
		answered += t.answered.Load()
	}
	return sent, answered
}

// now is the time since the start in nanoseconds.
func (r *Run) now() int64 { return int64(time.Since(r.start)) }

// loop is the thread's life: it takes in replies, sends what the rate
// allows, and sleeps in the port when there is neither; after its last
// send it waits for the replies still due, up to the timeout.
func (t *Thread) loop() {
	r := t.run
	var rx, tx [MaxBatch]nic.Packet
	batch := r.cfg.Batch
	perNs := r.cfg.Rate / float64(len(r.threads)) / 1e9
	sendEnd := int64(r.cfg.Duration)
	sending := true
	var drainEnd int64
	defer func() { t.stats.Sent = t.seq }()
	for {
		n, err := t.port.Poll(rx[:batch])
		if err != nil {
			if sending {
				r.sending.Add(-1)
			}
			if !errors.Is(err, nic.ErrClosed) {
				t.err = err
			}
			return
		}
		now := r.now()
		if n > 0 {
			t.account(rx[:n], now)
			t.port.Send(rx[:n])
			t.answered.Store(t.stats.Answered)
		}
		sent := 0
		if sending {
			if now >= sendEnd || t.seq >= t.quota || r.stop.Load() {
				sending = false
				drainEnd = now + int64(r.cfg.Timeout)
				r.sending.Add(-1)
			} else {
				due := batch
				if perNs > 0 {
					// Queries are due at 0, 1/rate, 2/rate, ... on each
					// thread; a late thread catches up one batch at a time.
					due = int(min(max(int64(float64(now)*perNs)+1-int64(t.seq), 0), int64(batch)))
				}
				due = int(min(uint64(due), t.quota-t.seq))
				if due > 0 {
					k := t.port.Alloc(tx[:due])
					stamp := uint64(r.now()) + 1
					for i := 0; i < k; i++ {
						t.put(&tx[i], stamp)
					}
					t.port.Transmit(tx[:k])
					if k > 0 {
						if t.stats.FirstSend < 0 {
							t.stats.FirstSend = int64(stamp - 1)
						}
						t.stats.LastSend = int64(stamp - 1)
						t.sentA.Store(t.seq)
					}
					sent = k
				}
			}
		} else if now >= drainEnd || r.done() {
			return
		}
		if n == 0 && sent == 0 {
			// Nothing came and nothing went: sleep in the port until a
			// reply arrives or the next query is due.
			wait := time.Millisecond
			if sending && perNs > 0 {
				// At a fixed rate the thread sleeps until the next query
				// is due, but never less than minPace: spinning through
				// gaps of a few microseconds would hold a whole CPU, which
				// a server on the same machine needs, for nothing. The
				// queries due meanwhile then leave as one small batch
				// (5 at 100k/s).
				due := time.Duration(float64(t.seq)/perNs) - time.Duration(r.now())
				wait = min(wait, max(due, minPace))
			}
			if wait > 0 && (perNs > 0 || !sending) {
				t.port.Wait(wait)
			} else if sending {
				// Flat out with every frame in flight: push them out.
				t.port.Wait(0)
			}
		}
	}
}

// done reports whether every thread has stopped sending and every query
// sent has been answered.
func (r *Run) done() bool {
	if r.sending.Load() > 0 {
		return false
	}
	s, a := r.Progress()
	return a >= s
}

// put writes the next query into p, stamped with its send time.
func (t *Thread) put(p *nic.Packet, stamp uint64) {
	seq := t.seq
	t.seq++
	f := t.run.frames
	var i int
	if t.run.cfg.Random {
		x := t.rng
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		t.rng = x
		i = int((x >> 32) * uint64(f.Len()) >> 32)
	} else {
		i = t.next
		if t.next++; t.next == f.Len() {
			t.next = 0
		}
	}
	sport, id := t.portBase+uint16(seq&(portsPerThread-1)), uint16(seq>>portsBits)
	switch {
	case !f.spoof.IsValid():
		p.Len = f.Put(p.Buf, i, sport, id)
	case t.run.cfg.OwnEvery != 0 && seq%t.run.cfg.OwnEvery == 0:
		if of := t.run.cfg.OwnFrames; of != nil {
			p.Len = of.Put(p.Buf, i%of.Len(), sport, id)
		} else {
			p.Len = f.Put(p.Buf, i, sport, id)
		}
		t.stats.Own.Sent++
	default:
		x := t.host
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		t.host = x
		p.Len = f.PutSpoofed(p.Buf, i, sport, id, uint32(x>>32))
		t.stats.Spoofed.Sent++
	}
	if t.slots[seq&(tableSize-1)].Swap(stamp) != 0 {
		t.stats.Overwrite++
	}
}

// account matches received frames to queries and counts them, and marks
// every frame to be given back.
func (t *Thread) account(pkts []nic.Packet, now int64) {
	r := t.run
	threads := r.threads
	for i := range pkts {
		b := pkts[i].Buf[:pkts[i].Len]
		pkts[i].Len = 0
		l4 := udpOffset(b)
		if l4 < 0 || len(b) < l4+8+12 {
			t.stats.Malformed++
			continue
		}
		msg := b[l4+8:]
		pi := int(binary.BigEndian.Uint16(b[l4+2:])) - int(r.cfg.BasePort)
		if pi < 0 || pi >= len(threads)*portsPerThread || msg[2]&0x80 == 0 {
			t.stats.Unmatched++
			continue
		}
		id := uint32(binary.BigEndian.Uint16(msg))
		owner := threads[pi>>portsBits]
		v := owner.slots[id<<portsBits|uint32(pi&(portsPerThread-1))].Swap(0)
		if v == 0 {
			t.stats.Unmatched++
			continue
		}
		t.hist.Add(now - int64(v-1))
		t.stats.Answered++
		t.stats.Rcodes[msg[3]&0x0f]++
		if msg[2]&0x02 != 0 {
			t.stats.Truncated++
		}
		t.stats.ReplyBytes += uint64(len(msg))
		if r.frames.spoof.IsValid() {
			src := &t.stats.Spoofed
			if r.frames.FromOwn(b) {
				src = &t.stats.Own
			}
			src.Answered++
			src.ReplyBytes += uint64(len(msg))
			if msg[2]&0x02 != 0 {
				src.Truncated++
			}
		}
	}
}

// udpOffset returns the offset of the UDP header in an Ethernet frame
// holding IPv4 or IPv6 (at most one 802.1Q tag, no IPv6 extension headers)
// and UDP, or -1.
func udpOffset(b []byte) int {
	if len(b) < 14 {
		return -1
	}
	off, et := 14, binary.BigEndian.Uint16(b[12:])
	if et == 0x8100 {
		if len(b) < 18 {
			return -1
		}
		off, et = 18, binary.BigEndian.Uint16(b[16:])
	}
	switch et {
	case 0x0800:
		if len(b) < off+20 || b[off]>>4 != 4 || b[off+9] != 17 {
			return -1
		}
		return off + int(b[off]&0x0f)*4
	case 0x86dd:
		if len(b) < off+40 || b[off+6] != 17 {
			return -1
		}
		return off + 40
	}
	return -1
}

// Wait waits for every thread to finish and returns the result.
func (r *Run) Wait() (Result, error) {
	if !r.begun {
		return Result{}, errors.New("loadgen: Wait before Start")
	}
	r.wg.Wait()
	var errs []error
	for _, t := range r.threads {
		if t.err != nil {
			errs = append(errs, fmt.Errorf("thread %d: %w", t.index, t.err))
		}
	}
	return r.result(), errors.Join(errs...)
}
