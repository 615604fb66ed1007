package server_test

// Benchmarks over real gRPC streams on loopback TCP, as clients see the
// server. Those of the hub alone are in bench_hub_test.go.

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchmarkFanoutGRPC measures the whole path over loopback TCP: one sender,
// N members each on its own connection, every message received by all.
func BenchmarkFanoutGRPC(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			cfg := server.DefaultConfig()
			cfg.MessageRate = 0
			cfg.PerClient = server.ClientLimits{} // every member comes from 127.0.0.1
			srv, addr := servertest.Start(b, cfg, slog.New(slog.DiscardHandler))

			ctx, cancel := context.WithCancel(context.Background())
			b.Cleanup(cancel)
			var received atomic.Int64
			progress := make(chan struct{}, 1)
			var wg sync.WaitGroup
			b.Cleanup(wg.Wait)
			var sender chatv1.ChatService_ChatClient
			for i := range n {
				conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { conn.Close() })
				stream, err := chatv1.NewChatServiceClient(conn).Chat(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: fmt.Sprintf("m%05d", i)}}}); err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					sender = stream
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					var ev chatv1.ChatResponse
					for stream.RecvMsg(&ev) == nil {
						if ev.GetMessage() != nil {
							received.Add(1)
							select {
							case progress <- struct{}{}:
							default:
							}
						}
					}
				}()
			}
			// Every member has joined once the last one is in ListUsers.
			for {
				resp, err := srv.Service().ListUsers(ctx, &chatv1.ListUsersRequest{})
				if err != nil {
					b.Fatal(err)
				}
				if len(resp.GetUsers()) == n {
					break
				}
				time.Sleep(time.Millisecond)
			}

			req := &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "hello, everyone"}}}
			want := int64(0)
			b.ReportAllocs()
			for b.Loop() {
				if err := sender.Send(req); err != nil {
					b.Fatal(err)
				}
				want += int64(n)
				for received.Load() < want {
					<-progress
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
