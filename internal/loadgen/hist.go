package loadgen

import (
	"math"
	"math/bits"
)

// Histogram counts latencies in nanoseconds in log-linear buckets: exact
// below 128 ns, then 64 buckets per power of two, so that any value is
// placed within 1/64 (1.6%) of itself. It spans up to 2^41 ns (36 minutes)
// in 2,432 buckets and allocates nothing as it counts.
type Histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max int64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histBuckets = (41 - histSubBits + 1) * histSub
)

func histBucket(v int64) int {
	if v < 2*histSub {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - 1 - histSubBits
	i := (shift+1)*histSub + int(uint64(v)>>shift) - histSub
	return min(i, histBuckets-1)
}

// histLow returns the smallest value that falls into bucket i.
func histLow(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	shift := i/histSub - 1
	return int64(i-shift*histSub) << shift
}

// Add counts one value.
func (h *Histogram) Add(v int64) {
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.counts[histBucket(v)]++
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// Count is the number of values counted.
func (h *Histogram) Count() uint64 { return h.n }

// Min and Max are the exact extremes (0 when empty).
func (h *Histogram) Min() int64 { return h.min }
func (h *Histogram) Max() int64 { return h.max }

// Quantile returns the value below which the fraction q of the values lie,
// taken as the middle of its bucket and kept within [Min, Max].
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histLow(i), histLow(i+1)
			return min(max((lo+hi-1)/2, h.min), h.max)
		}
	}
	return h.max
}
