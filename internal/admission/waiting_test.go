package admission_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/chatd/chatd/internal/admission"
)

// evicted reports whether t's place was given to a newcomer.
func evicted(t *admission.Ticket) bool {
	select {
	case <-t.Evicted():
		return true
	default:
		return false
	}
}

func TestWaitingRoomPerAddress(t *testing.T) {
	t.Parallel()
	r := admission.NewWaitingRoom(100, 2)
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2") // one /64
	c := netip.MustParseAddr("192.0.2.1")
	ta, err1 := r.Enter(a)
	tb, err2 := r.Enter(b)
	if err1 != nil || err2 != nil {
		t.Fatal("a /64 was refused within its 2 waiting streams")
	}
	if _, err := r.Enter(a); err != admission.ErrCrowded {
		t.Fatalf("a /64's 3rd waiting stream: %v; want ErrCrowded", err)
	}
	if _, err := r.Enter(c); err != nil {
		t.Fatalf("another address: %v", err)
	}
	tb.Leave()
	tb.Leave() // twice counts once
	if _, err := r.Enter(a); err != nil {
		t.Fatalf("a stream that left did not give its place back: %v", err)
	}
	if _, err := r.Enter(a); err != admission.ErrCrowded {
		t.Fatal("leaving twice gave back two places")
	}
	ta.Leave()
	if got := r.Len(); got != 2 {
		t.Errorf("Len = %d; want 2", got)
	}
	// Streams without an address share the room, without a limit of
	// their own.
	for range 5 {
		if _, err := r.Enter(netip.Addr{}); err != nil {
			t.Fatalf("a stream without an address: %v", err)
		}
	}
}

// A room that many addresses fill, each under its own limit, still takes
// a newcomer whose address has nothing waiting: the address holding the
// most gives its oldest stream up. Other newcomers take places only from
// addresses that hold more than theirs.
func TestWaitingRoomFullGivesPlaceUp(t *testing.T) {
	t.Parallel()
	r := admission.NewWaitingRoom(10, 5)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	enter := func(i int) *admission.Ticket {
		t.Helper()
		tk, err := r.Enter(addr(i))
		if err != nil {
			t.Fatalf("a stream from address %d: %v", i, err)
		}
		return tk
	}
	// Address 1 holds 4, addresses 2 to 7 one each.
	var one []*admission.Ticket
	for range 4 {
		one = append(one, enter(1))
	}
	two := enter(2)
	for i := 3; i <= 7; i++ {
		enter(i)
	}
	gone := func(tks ...*admission.Ticket) int {
		n := 0
		for _, tk := range tks {
			if evicted(tk) {
				n++
			}
		}
		return n
	}
	// Full: a newcomer from a new address takes address 1's oldest.
	enter(9)
	if !evicted(one[0]) || gone(one...) != 1 || r.Len() != 10 {
		t.Fatalf("after a newcomer: address 1's oldest evicted=%v, %d of its evicted, Len %d; want true, 1, 10", evicted(one[0]), gone(one...), r.Len())
	}
	// Address 1 holds the most: its own newcomer is refused.
	if _, err := r.Enter(addr(1)); err != admission.ErrFull {
		t.Fatalf("a newcomer from the address holding the most: %v; want ErrFull", err)
	}
	// Address 2 holds 1, address 1 holds 3: one place moves, and the two
	// hold 2 each.
	enter(2)
	if !evicted(one[1]) || evicted(two) {
		t.Fatal("address 2's newcomer did not take address 1's oldest")
	}
	// Address 3 holds 1, and the most anyone holds is 2: between equals,
	// no place moves.
	if _, err := r.Enter(addr(3)); err != admission.ErrFull {
		t.Fatalf("a newcomer that would hold as many as the address it took from: %v; want ErrFull", err)
	}
	// Leaving after an eviction changes nothing.
	one[0].Leave()
	if r.Len() != 10 {
		t.Fatalf("Len = %d after an evicted ticket left; want 10", r.Len())
	}
	// Ten addresses holding one each: the oldest stream goes first, so a
	// newcomer is the last to go.
	r = admission.NewWaitingRoom(10, 5)
	var ones []*admission.Ticket
	for i := range 10 {
		ones = append(ones, enter(10+i))
	}
	late := enter(30)
	for i := range 9 {
		enter(40 + i)
	}
	if gone(ones...) != 10 || evicted(late) {
		t.Errorf("after 10 newcomers: %d of the 10 old streams gone, the first newcomer gone=%v; want every old one gone before any newcomer", gone(ones...), evicted(late))
	}
}

// The room against a model: random arrivals and departures from a few
// addresses, and after each the room's choice (to take the newcomer or
// not, and whom to evict) is the model's, worked out the long way.
func TestWaitingRoomModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]int{} // outcomes, so that the model is seen to cover each
	for round := range 50 {
		capacity, perAddr := 1+rng.IntN(12), rng.IntN(5)
		r := admission.NewWaitingRoom(capacity, perAddr)
		type held struct {
			tk   *admission.Ticket
			addr netip.Addr
			seq  int
		}
		var in []held // the model: tickets in the room, oldest first
		seq := 0
		for step := range 300 {
			where := fmt.Sprintf("round %d (capacity %d, per address %d), step %d", round, capacity, perAddr, step)
			if len(in) > 0 && rng.IntN(3) == 0 {
				i := rng.IntN(len(in))
				in[i].tk.Leave()
				in = append(in[:i], in[i+1:]...)
			} else {
				a := netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(6))})
				count := map[netip.Addr]int{}
				oldest := map[netip.Addr]int{}
				for _, h := range in {
					if count[h.addr] == 0 {
						oldest[h.addr] = h.seq
					}
					count[h.addr]++
				}
				var wantErr error
				victim := -1
				switch {
				case perAddr > 0 && count[a] >= perAddr:
					wantErr = admission.ErrCrowded
				case len(in) >= capacity:
					var v netip.Addr
					for addr, n := range count {
						if !v.IsValid() || n > count[v] || n == count[v] && oldest[addr] < oldest[v] {
							v = addr
						}
					}
					if c := count[a]; c > 0 && (v == a || count[v]-1 < c+1) {
						wantErr = admission.ErrFull
						break
					}
					for i, h := range in {
						if h.addr == v {
							victim = i
							break
						}
					}
				}
				tk, err := r.Enter(a)
				if err != wantErr {
					t.Fatalf("%s: Enter(%s) = %v; want %v", where, a, err, wantErr)
				}
				switch {
				case err != nil:
					seen[err.Error()]++
				case victim >= 0:
					seen["evicted"]++
				}
				if victim >= 0 {
					if !evicted(in[victim].tk) {
						t.Fatalf("%s: the room did not evict the oldest stream of the address holding the most", where)
					}
					in = append(in[:victim], in[victim+1:]...)
				}
				if err == nil {
					in = append(in, held{tk, a, seq})
					seq++
				}
			}
			for _, h := range in {
				if evicted(h.tk) {
					t.Fatalf("%s: a stream the model holds was evicted", where)
				}
			}
			if r.Len() != len(in) {
				t.Fatalf("%s: Len = %d; the model holds %d", where, r.Len(), len(in))
			}
		}
	}
	for _, outcome := range []string{"evicted", admission.ErrFull.Error(), admission.ErrCrowded.Error()} {
		if seen[outcome] == 0 {
			t.Errorf("the random steps never gave %q: the model is not tested there", outcome)
		}
	}
}
