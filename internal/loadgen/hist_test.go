package loadgen

import (
	"math/rand/v2"
	"sort"
	"testing"
)

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<22; v += 1 + v/97 {
		i := histBucket(v)
		if i < prev {
			t.Fatalf("bucket of %d is %d, below the previous %d", v, i, prev)
		}
		prev = i
		lo, hi := histLow(i), histLow(i+1)
		if v < lo || v >= hi {
			t.Fatalf("%d in bucket %d = [%d, %d)", v, i, lo, hi)
		}
		if v >= 128 && float64(hi-lo) > float64(v)/histSub+1 {
			t.Fatalf("bucket %d = [%d, %d) is wider than 1/%d of %d", i, lo, hi, histSub, v)
		}
	}
	if i := histBucket(1 << 50); i != histBuckets-1 {
		t.Errorf("2^50 ns in bucket %d, want the last (%d)", i, histBuckets-1)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h, a, b Histogram
	var vals []int64
	for i := 0; i < 100000; i++ {
		v := int64(rng.ExpFloat64()*30000) + 5000
		vals = append(vals, v)
		h.Add(v)
		if i%2 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	a.Merge(&b)
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		for _, hh := range []*Histogram{&h, &a} {
			got := hh.Quantile(q)
			if d := float64(got-exact) / float64(exact); d > 0.02 || d < -0.02 {
				t.Errorf("q%.3f = %d, exact %d (%.2f%% off)", q, got, exact, 100*d)
			}
		}
	}
	if h.Min() != vals[0] || h.Max() != vals[len(vals)-1] || a.Min() != h.Min() || a.Max() != h.Max() {
		t.Errorf("min/max %d/%d, merged %d/%d, want %d/%d", h.Min(), h.Max(), a.Min(), a.Max(), vals[0], vals[len(vals)-1])
	}
	if a.Count() != h.Count() {
		t.Errorf("merged count %d, want %d", a.Count(), h.Count())
	}
}
