package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/grpcdial"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// probeTimeout bounds the check of chatd before a run: connecting, joining
// and leaving.
const probeTimeout = 10 * time.Second

// perAddressFlags turn off chatd's limits per client address, which a run
// meets since every member connects from this machine.
const perAddressFlags = "--max-conns-per-ip 0 --max-unjoined-per-ip 0 --max-sessions-per-ip 0 --join-rate-per-ip 0"

// probe checks the chatd at addr before a run, so that what would fail the
// run fails it at once, with what to do about it, rather than after the
// joins: that chatd answers at all, and takes a join. The probe is one
// session of its own, which logs out before the members join.
func probe(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := grpcdial.Dial(ctx, addr, probeTimeout, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()

	stream, err := chatv1.NewChatServiceClient(conn).Chat(ctx)
	if err != nil {
		return fmt.Errorf("probe session: %w", err)
	}
	name := fmt.Sprintf("chatbench-probe-%d", os.Getpid())
	_ = stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name}}})
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("probe session: join: %w", explainRefusal(err))
	}
	if first.GetWelcome() == nil {
		return fmt.Errorf("probe session: join answered with %v, want a welcome", first)
	}

	// Log out, so that nobody sees the probe linger, and wait for chatd to
	// end the stream: the members join after it is gone.
	_ = stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Leave{Leave: &chatv1.Leave{}}})
	_ = stream.CloseSend()
	for {
		if _, err := stream.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("probe session: leave: %w", err)
		}
	}
}

// explainRefusal adds to a join that chatd refused for one of its limits
// which flags of chatd's lift it.
func explainRefusal(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.ResourceExhausted {
		return err
	}
	msg := st.Message()
	switch {
	case strings.Contains(msg, "your address"):
		return fmt.Errorf("chatd refused it (%q): it limits what one client address may do, and every member connects from this machine; run chatd with %s", msg, perAddressFlags)
	case strings.Contains(msg, "server is full"):
		return fmt.Errorf("chatd refused it (%q): run chatd with a --max-sessions above --members", msg)
	case strings.Contains(msg, "waiting to join"):
		return fmt.Errorf("chatd refused it (%q): run chatd with a --max-unjoined above --join-concurrency", msg)
	}
	return err
}
