package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/grpcdial"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// probeTimeout bounds the check of chatd before a run: connecting, joining,
// the probe's messages and its leave.
const probeTimeout = 10 * time.Second

// probeMessages is how many messages the probe sends at once: more than
// chatd's default --message-burst (20), so that a chatd with its rate limit
// on refuses some of them. A much larger burst escapes the probe; the run
// still reports the messages it then refuses.
const probeMessages = 50

// perAddressFlags turn off chatd's limits per client address, which a run
// meets since every member connects from this machine.
const perAddressFlags = "--max-conns-per-ip 0 --max-unjoined-per-ip 0 --max-sessions-per-ip 0 --join-rate-per-ip 0"

// errRateLimited says that chatd refused the probe's messages for its rate
// limit; the caller knows what to advise.
var errRateLimited = errors.New("chatd limits how fast a session may send")

// probe checks the chatd at addr before a run, so that what would fail the
// run fails it at once, with what to do about it, rather than after the
// joins or the send phase: that chatd answers at all, and, if the run sends
// (sends), that it does not refuse a quick burst of messages. The probe is
// one session of its own, which sends its messages to itself (nobody else
// sees them) and logs out before the members join. Nodes of a cluster are
// probed one after the other, each with a name of its own (node, from 1;
// 0 for one chatd), so that no probe waits for another's leave.
func probe(ctx context.Context, addr string, node int, sends bool, creds grpc.DialOption) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := grpcdial.Dial(ctx, addr, probeTimeout, creds)
	if err != nil {
		return err
	}
	defer conn.Close()

	stream, err := chatv1.NewChatServiceClient(conn).Chat(ctx)
	if err != nil {
		return fmt.Errorf("probe session: %w", err)
	}
	name := fmt.Sprintf("chatbench-probe-%d", os.Getpid())
	if node > 0 {
		name += fmt.Sprintf("-%d", node)
	}
	_ = stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Join{Join: &chatv1.Join{Username: name}}})
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("probe session: join: %w", explainRefusal(err))
	}
	if first.GetWelcome() == nil {
		return fmt.Errorf("probe session: join answered with %v, want a welcome", first)
	}

	var rateErr error
	if sends {
		rateErr = probeRate(stream, name)
	}

	// Log out, even after a refusal, so that chatd does not hold the
	// probe's session for a resume, and wait for chatd to end the stream:
	// the members join after it is gone.
	_ = stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Leave{Leave: &chatv1.Leave{}}})
	_ = stream.CloseSend()
	for {
		if _, err := stream.Recv(); err != nil {
			if rateErr != nil {
				return rateErr
			}
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("probe session: leave: %w", err)
		}
	}
}

// probeRate sends probeMessages messages at once to the probe itself and
// waits for each to be delivered or refused.
func probeRate(stream grpc.BidiStreamingClient[chatv1.ChatRequest, chatv1.ChatResponse], name string) error {
	for i := range probeMessages {
		req := &chatv1.ChatRequest{
			ClientId: fmt.Sprintf("probe-%d", i),
			Action:   &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "chatbench probe", Recipient: name}},
		}
		if err := stream.Send(req); err != nil {
			break // the stream is over; Recv says why
		}
	}
	for answered := 0; answered < probeMessages; {
		resp, err := stream.Recv()
		if err != nil {
			// chatd ends a session that is refused too often; if it was
			// for its rate limit, the reason says so.
			if status.Code(err) == codes.ResourceExhausted {
				return fmt.Errorf("%w: it ended the probe session, which sent %d messages at once: %s", errRateLimited, probeMessages, status.Convert(err).Message())
			}
			return fmt.Errorf("probe session: %w", err)
		}
		switch ev := resp.GetEvent().(type) {
		case *chatv1.ChatResponse_Message:
			if ev.Message.GetSender() == name && strings.HasPrefix(ev.Message.GetClientId(), "probe-") {
				answered++
			}
		case *chatv1.ChatResponse_Rejected:
			if codes.Code(ev.Rejected.GetCode()) == codes.ResourceExhausted {
				return fmt.Errorf("%w: of %d messages sent at once, it refused one with %q", errRateLimited, probeMessages, ev.Rejected.GetReason())
			}
			return fmt.Errorf("probe session: chatd refused a message: %s", ev.Rejected.GetReason())
		}
	}
	return nil
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
	// Before "your address": a full room says whose streams it holds.
	case strings.Contains(msg, "full of streams waiting to join"):
		return fmt.Errorf("chatd refused it (%q): run chatd with a --max-unjoined above --join-concurrency", msg)
	case strings.Contains(msg, "your address"):
		return fmt.Errorf("chatd refused it (%q): it limits what one client address may do, and every member connects from this machine; run chatd with %s", msg, perAddressFlags)
	case strings.Contains(msg, "server is full"):
		return fmt.Errorf("chatd refused it (%q): run chatd with a --max-sessions above --members × --devices", msg)
	case strings.Contains(msg, "device") && strings.Contains(msg, "the most allowed"):
		return fmt.Errorf("chatd refused it (%q): run chatd with a --max-devices-per-user of at least --devices", msg)
	}
	return err
}
