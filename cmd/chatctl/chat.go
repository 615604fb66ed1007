package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// chatStream is the client side of a joined Chat stream: a
// *chatclient.Stream, whose Recv takes batches apart, or a test's.
type chatStream interface {
	Send(*chatv1.ChatRequest) error
	Recv() (*chatv1.ChatResponse, error)
	CloseSend() error
	Close()
}

// joinError explains why a join failed, with the exit code for it.
func joinError(err error) error {
	if errors.Is(err, chatclient.ErrNoWelcome) {
		return withExitCode(exitConnLost, fmt.Errorf("cannot join: %w", err))
	}
	st, ok := status.FromError(err)
	if !ok {
		return err // from dial, already explained
	}
	msg := fmt.Errorf("cannot join: %s", st.Message())
	switch st.Code() {
	case codes.AlreadyExists:
		return withExitCode(exitNameTaken, msg)
	case codes.InvalidArgument:
		return withExitCode(exitInvalidName, msg)
	case codes.ResourceExhausted:
		return withExitCode(exitServerFull, msg)
	case codes.Unavailable:
		// No session was lost: the server is going away or just went.
		return withExitCode(exitUnreachable, msg)
	case codes.Unauthenticated, codes.PermissionDenied:
		return signInError(msg)
	case codes.Canceled:
		return errors.New("interrupted while joining")
	}
	return msg
}

// sessionError explains why a session that had been welcomed ended with an
// error. It is never called for the end a client asked for.
func sessionError(err error) error {
	if err == io.EOF {
		// chatd only ends a session OK after a leave or a half-close.
		return withExitCode(exitConnLost, errors.New("connection lost: the server ended the session"))
	}
	return withExitCode(exitConnLost, fmt.Errorf("connection lost: %s", status.Convert(err).Message()))
}

// newClientID returns a client_id for a request. It is random rather than a
// counter so that it is also unique across chatctl runs, which helps anyone
// correlating JSON output.
func newClientID() string {
	return rand.Text()[:16]
}

// textRequest is the request that sends text with clientID to channel, or
// privately to recipient; with neither it goes to "general".
func textRequest(text, channel, recipient, clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{
		ClientId: clientID,
		Action:   &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: text, Channel: channel, Recipient: recipient}},
	}
}

// joinChannelRequest is the request that enters channel.
func joinChannelRequest(channel, clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{
		ClientId: clientID,
		Action:   &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: channel}},
	}
}

// listChannelsRequest is the request that asks for the channel list.
func listChannelsRequest(clientID string) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{ClientId: clientID, Action: &chatv1.ChatRequest_ListChannels{ListChannels: &chatv1.ListChannels{}}}
}

// sendLeave logs out. A failed Send means the stream is over: the caller
// learns why from Recv.
func sendLeave(stream chatStream) {
	_ = stream.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Leave{Leave: &chatv1.Leave{}}})
}

// sameChannel reports whether a and b name the same channel: channel names
// are unique whatever their letter case, and one leading "#" is ignored.
func sameChannel(a, b string) bool {
	return strings.EqualFold(strings.TrimPrefix(a, "#"), strings.TrimPrefix(b, "#"))
}
