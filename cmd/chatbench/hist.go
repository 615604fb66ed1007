package main

import (
	"math"
	"math/bits"
	"time"
)

// The latency histogram is log-linear, like HdrHistogram: values below
// 2*histSub nanoseconds each have a bucket, and every power of two above that
// is split into histSub buckets, so a bucket is at most 1/histSub (about 3%)
// of its values wide, whatever their size. Every sample is counted, so p99.9
// is as honest as p50, in fixed memory however long the run.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	// histMaxBits bounds what is recorded: 2^40 ns is about 18 minutes.
	// Longer latencies are recorded as the largest value.
	histMaxBits = 40
	histBuckets = (histMaxBits-histSubBits-1)*histSub + 2*histSub
	histMax     = 1<<histMaxBits - 1
)

// histogram counts durations, in nanoseconds. It is not safe for concurrent
// use: each member has its own, merged once the run is over.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max uint64
}

// bucketOf returns the index of the bucket that counts v.
func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	// v's top histSubBits+1 bits, m in [histSub, 2*histSub), select the
	// bucket within v's power of two.
	shift := bits.Len64(v) - histSubBits - 1
	return shift*histSub + int(v>>shift)
}

// bucketRange returns the smallest and largest values bucket i counts.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2*histSub {
		return uint64(i), uint64(i)
	}
	shift := i/histSub - 1
	m := uint64(i - shift*histSub)
	return m << shift, (m+1)<<shift - 1
}

// record counts one duration. Negative durations (impossible with a
// monotonic clock) count as 0.
func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	v = min(v, histMax)
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
}

// quantile returns the value below or at which a fraction q of the samples
// lie: the upper bound of the bucket that holds the sample of rank ceil(q*n),
// so it overstates by at most one bucket's width, never understates, and it
// is clamped to the exact minimum and maximum. It returns 0 for no samples.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
