package archive_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/archive"
)

// BenchmarkPage1M pages a channel of 1,000,000 messages (among 1,050,000
// in the archive, the rest in 50 other conversations) at random places:
// 100 messages before a random message of it. It reports the latency of a
// page (p50, p99) and the heap the archive holds for all of it. The
// issue's target: p99 under 20 ms. Run with
//
//	go test ./internal/archive -run '^$' -bench Page1M -benchtime 2000x
func BenchmarkPage1M(b *testing.B) {
	dir := b.TempDir()
	a, err := archive.Open(archive.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	text := make([]byte, 120) // a typical message's encoding
	for i := range text {
		text[i] = 'a' + byte(i%26)
	}
	var nums []uint64
	for n := uint64(1); n <= 1_050_000; n++ {
		conv := "#big"
		if rng.IntN(21) == 0 {
			conv = fmt.Sprint("#other", rng.IntN(50))
		} else {
			nums = append(nums, n)
		}
		a.Add(conv, n, time.Unix(int64(n), 0), text)
		if n%50_000 == 0 {
			if err := a.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := a.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	a.Close()
	// A new process: what Open keeps in memory, and pages from a cold
	// start of the process (the operating system's cache is warm).
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	a, err = archive.Open(archive.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	opened := time.Since(start)
	defer a.Close()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.Logf("%d messages of #big; Open took %v", len(nums), opened)

	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		n := nums[rng.IntN(len(nums))]
		t0 := time.Now()
		page, _, err := a.Page("#big", n, 100)
		lat = append(lat, time.Since(t0))
		if err != nil || len(page) == 0 && n > nums[0] {
			b.Fatalf("page before %d: %d messages, %v", n, len(page), err)
		}
	}
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	// After the loop: ResetTimer drops what was reported before it.
	b.ReportMetric(float64(opened.Microseconds())/1000, "open-ms")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1024, "heap-KiB")
}
