package server_test

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/servertest"
	"github.com/chatd/chatd/server"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkRefuse measures what chatd spends on a call it refuses, beside
// one it answers: a Chat stream from an address that has its streams
// waiting to join already, and a list call past its address's rate. A
// hostile client sends such calls as fast as they are refused, so what
// one costs is what it can make chatd spend.
//
// The client is raw HTTP/2 with up to 32 calls in flight on one
// connection, opened 16 at a time, so that it costs little beside the
// server: cpu-µs/op is the whole process's CPU (server and this client)
// per call, from getrusage, and is the figure to compare; ns/op is wall
// time, which on a machine with spare cores hides what the server spends.
// Run it with -cpu 1, as chatd on one core.
func BenchmarkRefuse(b *testing.B) {
	empty := []byte{0, 0, 0, 0, 0} // an empty request: no compression, length 0
	b.Run("stream", func(b *testing.B) {
		cfg := server.DefaultConfig()
		cfg.PerClient.MaxUnjoined = 1 // the first stream waits; every other is refused
		benchCalls(b, cfg, "/chat.v1.ChatService/Chat", nil, "8")
	})
	b.Run("list", func(b *testing.B) {
		cfg := server.DefaultConfig()
		cfg.PerClient.ListRate, cfg.PerClient.ListBurst = 1e-9, 1 // one call answered, then none
		benchCalls(b, cfg, "/chat.v1.ChatService/ListUsers", empty, "8")
	})
	b.Run("list-answered", func(b *testing.B) {
		cfg := server.DefaultConfig()
		cfg.PerClient.ListRate = 0
		benchCalls(b, cfg, "/chat.v1.ChatService/ListUsers", empty, "0")
	})
}

// benchCalls starts a server with cfg and makes b.N calls of method on
// one raw connection, each sending body (if any) and ending its side,
// and checks that the last ends with grpc-status want.
func benchCalls(b *testing.B, cfg server.Config, method string, body []byte, want string) {
	cfg.PerClient.RefusalRate = 0 // measure refusals, not connections closed for them
	_, addr := servertest.Start(b, cfg, slog.New(slog.DiscardHandler))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	w := bufio.NewWriter(c)
	fr := http2.NewFramer(w, bufio.NewReader(c))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	if _, err := w.WriteString(http2.ClientPreface); err != nil {
		b.Fatal(err)
	}
	if err := fr.WriteSettings(); err != nil {
		b.Fatal(err)
	}
	open := func(id uint32) {
		hb.Reset()
		for _, f := range []hpack.HeaderField{
			{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: method},
			{Name: ":authority", Value: "chatd"}, {Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
		} {
			_ = enc.WriteField(f)
		}
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true})
		if body != nil {
			_ = fr.WriteData(id, true, body)
		}
	}
	// Chat's first stream is held waiting; the calls measured follow it.
	next := uint32(1)
	if body == nil {
		open(next)
		next += 2
	}
	const inFlight = 32
	var last string
	run := func(n int) {
		started, ended := 0, 0
		for ended < n {
			// Half the calls in flight ended: open as many again, in
			// one write.
			if started < n && started-ended <= inFlight/2 {
				for started < n && started-ended < inFlight {
					open(next)
					next += 2
					started++
				}
				if err := w.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatalf("after %d of %d calls: %v", ended, n, err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
					_ = w.Flush()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					_ = fr.WritePing(true, f.Data)
					_ = w.Flush()
				}
			case *http2.DataFrame:
				if n := uint32(len(f.Data())); n > 0 {
					_ = fr.WriteWindowUpdate(0, n) // sent with the next calls
				}
			case *http2.MetaHeadersFrame:
				for _, hf := range f.RegularFields() {
					if hf.Name == "grpc-status" {
						last = hf.Value
						ended++
					}
				}
			}
		}
	}
	run(100) // warm up: the connection's buffers, the server's pools
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	if last != want {
		b.Fatalf("the last call ended with grpc-status %s; want %s", last, want)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}
