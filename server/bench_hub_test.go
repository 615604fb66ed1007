package server_test

// Benchmarks of the hub driven directly, with no transport: its share of
// a fan-out, a join, a list, and what encoding an event once saves. Those
// over gRPC are in bench_test.go.

import (
	"fmt"
	"net/netip"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var memberCounts = []int{10, 100, 1000}

// reader stands for a session's writer: it empties the queue and hands the
// emptied batch back, as the writer does.
type reader struct {
	s     *server.Stream
	spare []server.Delivery
}

func (r *reader) drain() {
	batch := r.s.Take(r.spare)
	clear(batch)
	r.spare = batch[:0]
}

// benchHub returns a hub with n joined sessions whose queues are empty.
func benchHub(b *testing.B, n, queueSize int) (*server.Hub, []*reader) {
	b.Helper()
	h := newHub(b, n+1, queueSize)
	readers := make([]*reader, 0, n)
	for i := range n {
		s, err := h.Join(b.Context(), fmt.Sprintf("m%05d", i), "", 0, netip.Addr{})
		if err != nil {
			b.Fatal(err)
		}
		readers = append(readers, &reader{s: s})
		drain(readers)
	}
	return h, readers
}

// drain empties every session's queue, as their writers would.
func drain(readers []*reader) {
	for _, r := range readers {
		r.drain()
	}
}

// BenchmarkHubPublish measures one message published to N sessions and
// taken off their queues: the hub's share of a fan-out, without the network.
func BenchmarkHubPublish(b *testing.B) {
	for _, n := range memberCounts {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			h, readers := benchHub(b, n, 64)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if err := h.Send(ctx, readers[0].s, "hello, everyone", "", "", "c1"); err != nil {
					b.Fatal(err)
				}
				drain(readers)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkHubJoinLeave measures a user joining and logging out while N
// others are online: two broadcasts to N, a welcome of N+1 users.
func BenchmarkHubJoinLeave(b *testing.B) {
	for _, n := range memberCounts {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			h, readers := benchHub(b, n, 64)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				s, err := h.Join(ctx, "newcomer", "", 0, netip.Addr{})
				if err != nil {
					b.Fatal(err)
				}
				h.Leave(s, chatv1.LeaveReason_LEAVE_REASON_LOGOUT)
				drain(readers)
				s.Take(nil)
			}
		})
	}
}

// BenchmarkEncode compares marshalling a message event once per subscriber
// with marshalling it once for all of them, for 1,000 subscribers.
func BenchmarkEncode(b *testing.B) {
	ev := &chatv1.ChatResponse{
		Seq:  12345,
		Time: timestamppb.Now(),
		Event: &chatv1.ChatResponse_Message{Message: &chatv1.Message{
			Id: "5de0e0fd-12345", Sender: "alice", Text: "hello, everyone: how is it going?", ClientId: "c1",
		}},
	}
	const subscribers = 1000
	b.Run("per-subscriber", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for range subscribers {
				if _, err := proto.Marshal(ev); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("once", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkListUsers measures what a ListUsers call costs the hub while
// nobody joins or leaves: the list is built once per change, not per call,
// so a flood of calls holds the hub's lock for no O(users) copy.
func BenchmarkListUsers(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			h, _ := benchHub(b, n, 4096)
			b.ReportAllocs()
			for b.Loop() {
				if len(h.Users()) != n {
					b.Fatal("wrong list")
				}
			}
		})
	}
}
