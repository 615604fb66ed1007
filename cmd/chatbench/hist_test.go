package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	t.Parallel()
	prevHi := uint64(0)
	for i := range histBuckets {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d (right after bucket %d)", i, lo, prevHi+1, i-1)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d is [%d, %d], but those values map to buckets %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		// Every bucket is at most 1/histSub of its values wide.
		if width := hi - lo + 1; lo >= 2*histSub && width*histSub > lo {
			t.Fatalf("bucket %d is [%d, %d]: %d wide, more than 1/%d of %d", i, lo, hi, width, histSub, lo)
		}
		prevHi = hi
	}
	if prevHi != histMax {
		t.Fatalf("last bucket ends at %d, want %d", prevHi, histMax)
	}
}

func TestQuantilesMatchSortedSamples(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var samples []time.Duration
	for range 100000 {
		// Log-uniform from 1µs to about 1s, like latencies.
		d := time.Duration(float64(time.Microsecond) * float64(uint64(1)<<rng.IntN(20)) * (1 + rng.Float64()))
		samples = append(samples, d)
		h.record(d)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := samples[int(q*float64(len(samples)))-1]
		got := h.quantile(q)
		// Never below the exact value; above it by at most a bucket.
		if got < exact || float64(got) > float64(exact)*(1+2.0/histSub) {
			t.Errorf("quantile(%g) = %s, exact %s", q, got, exact)
		}
	}
	if h.quantile(1) != samples[len(samples)-1] {
		t.Errorf("quantile(1) = %s, want the maximum %s", h.quantile(1), samples[len(samples)-1])
	}
}

func TestHistogramEdges(t *testing.T) {
	t.Parallel()
	var h histogram
	if got := h.quantile(0.5); got != 0 {
		t.Errorf("empty histogram's median = %s, want 0", got)
	}
	h.record(-5)        // impossible, counted as 0
	h.record(time.Hour) // beyond the range: clamped
	h.record(3 * time.Nanosecond)
	if h.n != 3 || h.min != 0 || h.max != histMax {
		t.Errorf("n, min, max = %d, %d, %d; want 3, 0, %d", h.n, h.min, h.max, uint64(histMax))
	}
	if got := h.quantile(0.5); got != 3 {
		t.Errorf("median = %s, want 3ns (exact below %d ns)", got, 2*histSub)
	}

	var a, b, both histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		both.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	a.merge(nil)
	if a != both {
		t.Error("merging two halves differs from recording everything in one")
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	b := appendText(nil, 12, 345, 6789012345)
	if string(b) != "b:12:345:6789012345" {
		t.Fatalf("appendText = %q", b)
	}
	from, n, at, ok := parseText(b)
	if !ok || from != 12 || n != 345 || at != 6789012345 {
		t.Errorf("parseText(%q) = %d, %d, %d, %v", b, from, n, at, ok)
	}
	if _, _, _, ok := parseText(string(b)); !ok {
		t.Errorf("parseText of the string %q failed", b)
	}
	for _, bad := range []string{"", "b:", "hello", "b:1:2", "b:1:2:", "b:1:2:3:", "b:x:2:3", "b:1::3", "b:1:2:3x", "c:1:2:3", "b:99999999999999999999:2:3"} {
		if _, _, _, ok := parseText(bad); ok {
			t.Errorf("parseText(%q) succeeded, want failure", bad)
		}
	}
}

func TestAccountCountsLossAndDuplicates(t *testing.T) {
	t.Parallel()
	// One sender (member 0) sent 5, one of which the server refused.
	ms := []*member{newMember(0, 1, 0), newMember(1, 1, 0), newMember(2, 1, 0)}
	ms[0].snd = &sender{credits: make(chan struct{}, 4)}
	ms[0].snd.sent.Store(5)
	for _, m := range ms {
		m.lastSeq = 10
	}
	ms[0].reject("too many messages", "")
	deliver := func(m *member, ns ...uint64) {
		for _, n := range ns {
			onMessage(m, string(appendText(nil, 0, n, now())))
		}
	}
	deliver(ms[0], 0, 1, 2, 4) // everything (3 was refused)
	deliver(ms[1], 0, 2, 4, 2) // 1 lost, 2 again
	deliver(ms[2], 0)          // dropped as too slow: not a loss
	ms[2].early, ms[2].endErr = true, errSlowDropped
	onMessage(ms[1], "someone else's message")

	var r result
	r.SendS = 1
	r.account(ms, 1)
	want := result{
		SendS: 1, Sent: 5, Rejected: 1, Deliveries: 8, ExpectedDeliveries: 8,
		Lost: 1, Duplicated: 1, Foreign: 1, SlowDropped: 1,
	}
	if r.Sent != want.Sent || r.Rejected != want.Rejected || r.Deliveries != want.Deliveries ||
		r.ExpectedDeliveries != want.ExpectedDeliveries || r.Lost != want.Lost ||
		r.Duplicated != want.Duplicated || r.Foreign != want.Foreign || r.SlowDropped != want.SlowDropped {
		t.Errorf("account gave %+v\nwant %+v", r, want)
	}
	if len(r.Problems) != 3 {
		t.Errorf("problems %q, want loss, duplicate and refusal", r.Problems)
	}
	if r.LatencyMS == nil || r.DeliveriesPerS == nil || *r.DeliveriesPerS != 8 {
		t.Errorf("latency %v, deliveries/s %v: want both set", r.LatencyMS, r.DeliveriesPerS)
	}
}
