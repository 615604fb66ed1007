package archive_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/archive"
)

func open(t testing.TB, dir string, edit func(*archive.Config)) *archive.Archive {
	t.Helper()
	cfg := archive.Config{Dir: dir, SegmentBytes: 8 << 10}
	if edit != nil {
		edit(&cfg)
	}
	a, err := archive.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// fill adds n messages, numbered from first on, each to one of convs at
// random, and returns each conversation's message numbers in order.
func fill(t testing.TB, a *archive.Archive, rng *rand.Rand, first uint64, n int, convs []string) map[string][]uint64 {
	t.Helper()
	got := map[string][]uint64{}
	for i := range uint64(n) {
		num := first + i
		c := convs[rng.IntN(len(convs))]
		a.Add(c, num, time.Unix(int64(num), 0), []byte(fmt.Sprintf("%s:%d", c, num)))
		got[c] = append(got[c], num)
	}
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return got
}

// pageAll pages conv back to its start, limit at a time, and returns the
// numbers in order, checking each page.
func pageAll(t *testing.T, a *archive.Archive, conv string, limit int) []uint64 {
	t.Helper()
	var all []uint64
	before := uint64(0)
	for {
		page, more, err := a.Page(conv, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("a page of %d; want at most %d", len(page), limit)
		}
		var nums []uint64
		for _, w := range page {
			var c string
			var n uint64
			if _, err := fmt.Sscanf(string(w), "%s", &c); err != nil {
				t.Fatal(err)
			}
			i := len(w) - 1
			for w[i] != ':' {
				i--
			}
			fmt.Sscan(string(w[i+1:]), &n)
			if string(w[:i]) != conv {
				t.Fatalf("%s's page holds %q", conv, w)
			}
			nums = append(nums, n)
		}
		if !slices.IsSorted(nums) {
			t.Fatalf("a page out of order: %v", nums)
		}
		all = append(nums, all...)
		if !more {
			return all
		}
		if len(page) == 0 {
			t.Fatal("an empty page with more to come")
		}
		before = nums[0]
	}
}

// Paging a conversation from its newest message back gives every message
// of it, once, in order, whatever the page size, among many
// conversations, across segments, and again after a restart (with its
// saved heads, and without them).
func TestPagesGiveEveryMessage(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	convs := []string{"#general", "#design", "@alice\x00bob", "#quiet"}
	want := fill(t, a, rng, 1, 3000, convs)
	check := func(a *archive.Archive, when string) {
		t.Helper()
		for _, c := range convs {
			for _, limit := range []int{1, 7, 100} {
				if got := pageAll(t, a, c, limit); !slices.Equal(got, want[c]) {
					t.Fatalf("%s: %s paged %d at a time: %d messages, want %d", when, c, limit, len(got), len(want[c]))
				}
			}
		}
	}
	check(a, "first run")
	a.Close()
	check(open(t, dir, nil), "restarted with the saved heads")
	if err := os.Remove(filepath.Join(dir, "heads")); err != nil {
		t.Fatal(err)
	}
	check(open(t, dir, nil), "restarted without them")
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.arc")); len(segs) < 5 {
		t.Fatalf("%d segments; the test means to cross many", len(segs))
	}
}

// A page before a message starts right before it, wherever it is.
func TestPageBefore(t *testing.T) {
	a := open(t, t.TempDir(), nil)
	rng := rand.New(rand.NewPCG(3, 4))
	want := fill(t, a, rng, 1, 5000, []string{"#a", "#b"})
	nums := want["#a"]
	for range 200 {
		i := rng.IntN(len(nums))
		before := nums[i] + uint64(rng.IntN(2)) // a number of #a's, or of #b's in between
		page, _, err := a.Page("#a", before, 10)
		if err != nil {
			t.Fatal(err)
		}
		j := sort.Search(len(nums), func(k int) bool { return nums[k] >= before })
		wantPage := nums[max(0, j-10):j]
		if len(page) != len(wantPage) {
			t.Fatalf("page before %d: %d messages; want %d", before, len(page), len(wantPage))
		}
		for k, w := range page {
			if string(w) != fmt.Sprintf("#a:%d", wantPage[k]) {
				t.Fatalf("page before %d: %q where %d should be", before, w, wantPage[k])
			}
		}
	}
}

// The chat's log gives messages again after a crash: those the archive
// has are skipped.
func TestAddAgainSkipped(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, nil)
	rng := rand.New(rand.NewPCG(5, 6))
	want := fill(t, a, rng, 1, 100, []string{"#a"})
	a.Close()
	a = open(t, dir, nil)
	fill(t, a, rng, 51, 50, []string{"#a"}) // 51..100 again
	if got := pageAll(t, a, "#a", 100); !slices.Equal(got, want["#a"]) {
		t.Fatalf("after the same messages were added again: %d messages, want %d", len(got), len(want["#a"]))
	}
}

// A record torn at the end (a crash in the middle of a write) is cut off;
// the chat's log gives it again.
func TestTornEndCutOff(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, nil)
	for i := range uint64(10) {
		a.Add("#a", i+1, time.Unix(int64(i), 0), []byte(fmt.Sprint("#a:", i+1)))
	}
	a.Close()
	os.Remove(filepath.Join(dir, "heads"))
	segs, _ := filepath.Glob(filepath.Join(dir, "*.arc"))
	last := segs[len(segs)-1]
	info, _ := os.Stat(last)
	os.Truncate(last, info.Size()-2)
	a = open(t, dir, nil)
	a.Add("#a", 10, time.Unix(9, 0), []byte("#a:10"))
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := pageAll(t, a, "#a", 100); len(got) != 10 || got[9] != 10 {
		t.Fatalf("after a torn end: %v; want 1..10", got)
	}
}

// Past its size limit the archive drops its oldest segments, and a
// conversation's scroll-back ends where they were; so it does past its age
// limit.
func TestLimits(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		a := open(t, t.TempDir(), func(c *archive.Config) { c.MaxBytes = 32 << 10 })
		rng := rand.New(rand.NewPCG(7, 8))
		want := fill(t, a, rng, 1, 3000, []string{"#a"})
		got := pageAll(t, a, "#a", 100)
		if len(got) == 0 || len(got) >= len(want["#a"]) || got[len(got)-1] != 3000 {
			t.Fatalf("kept %d of %d messages, the last %v; want the newest few only", len(got), len(want["#a"]), got[len(got)-1:])
		}
		if !slices.Equal(got, want["#a"][len(want["#a"])-len(got):]) {
			t.Fatal("what is kept is not the newest messages, in order")
		}
	})
	t.Run("age", func(t *testing.T) {
		now := time.Unix(1_000_000, 0)
		a := open(t, t.TempDir(), func(c *archive.Config) { c.MaxAge = time.Hour; c.Now = func() time.Time { return now } })
		rng := rand.New(rand.NewPCG(9, 10))
		fill(t, a, rng, 1, 2000, []string{"#a"}) // times 1..2000 s: long ago
		now = time.Unix(1_000_000+int64(2*time.Hour/time.Second), 0)
		a.Prune()
		if got := pageAll(t, a, "#a", 100); len(got) > 300 {
			t.Fatalf("%d messages older than the age limit kept", len(got))
		}
	})
}
