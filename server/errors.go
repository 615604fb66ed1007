package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kinds of refusal. Every error the service shows a client wraps one of
// these (see [Error]); kindCodes, below, is the one place that maps them to
// gRPC codes.
var (
	ErrInvalidUsername  = errors.New("invalid username")
	ErrUsernameTaken    = errors.New("username taken")
	ErrServerFull       = errors.New("server full")
	ErrInvalidText      = errors.New("invalid message text")
	ErrInvalidRequest   = errors.New("invalid request")
	ErrRateLimited      = errors.New("rate limited")
	ErrNotJoined        = errors.New("not joined")
	ErrAlreadyJoined    = errors.New("already joined")
	ErrJoinTimeout      = errors.New("join timeout")
	ErrTooSlow          = errors.New("client too slow")
	ErrShuttingDown     = errors.New("server shutting down")
	ErrRequestTooLarge  = errors.New("request too large")
	ErrInvalidChannel   = errors.New("invalid channel name")
	ErrNotFound         = errors.New("not found")
	ErrNotInChannel     = errors.New("not in channel")
	ErrAlreadyInChannel = errors.New("already in channel")
	ErrTooManyChannels  = errors.New("too many channels")
	ErrTooManyDevices   = errors.New("too many devices")
	ErrInboxFull        = errors.New("offline inbox full")
	ErrBanned           = errors.New("banned")
	ErrReplaced         = errors.New("session taken over")
	ErrTooManyRefusals  = errors.New("too many refused requests")
	ErrUnavailable      = errors.New("cluster unavailable")
	ErrUnauthenticated  = errors.New("not signed in")
	ErrPermissionDenied = errors.New("permission denied")
)

// Error is a refusal whose message is safe to show to the client: it says
// what went wrong and what to do about it. Kind is one of the Err* values.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is match the kind.
func (e *Error) Unwrap() error { return e.Kind }

// GRPCStatus is the status a client sees for e: its kind's code (see
// kindCodes) and its message. gRPC calls it for an error a handler
// returns, and status.FromError and status.Code do too, so an *Error may
// be returned as it is. A kind with no code is an internal error.
func (e *Error) GRPCStatus() *status.Status {
	for _, kc := range kindCodes {
		if errors.Is(e.Kind, kc.kind) {
			return status.New(kc.code, e.Msg)
		}
	}
	return status.New(codes.Internal, "internal error")
}

// errShutdown ends every session, and every stream not joined yet, when the
// server shuts down.
var errShutdown = &Error{Kind: ErrShuttingDown, Msg: "server shutting down, reconnect later"}

// errCutOff ends the streams of a cluster node that the others gave up for
// dead (cut off from the cluster's log, or frozen, for longer than the node
// timeout): their sessions were parked, and their clients resume them by
// reconnecting, here or on another node. Nothing such a stream sent that
// it was not answered was carried out (see Cluster.cutOffLocked).
var errCutOff = &Error{Kind: ErrUnavailable, Msg: "this server lost touch with the rest of the chat for too long: reconnect to resume your session; what it did not answer was not carried out"}

// errCutOffRefused refuses what the streams of a node given up for dead
// send, or sent after the point of the log that gave them up, before they
// end with errCutOff.
var errCutOffRefused = &Error{Kind: ErrUnavailable, Msg: "this server lost touch with the rest of the chat for too long: this request was not carried out; reconnect and send it again"}

// errEvicted ends a stream that was waiting for its join when the server
// had as many waiting as it takes (--max-unjoined), and that gave its
// place to a newcomer (see admission.WaitingRoom).
var errEvicted = &Error{Kind: ErrServerFull, Msg: "the server is full of streams waiting to join, and this one had waited longest of those from the address with the most: it gave its place to a newer one; send the join as soon as the stream is open"}

// errGone refuses a request from a stream the hub no longer has: dropped,
// logged out or taken over.
var errGone = &Error{Kind: ErrNotJoined, Msg: "you are no longer in the chat: join again"}

// errReplaced ends a stream whose session was taken over by a join with its
// resume token: the client should not reconnect, or the two would take the
// session from each other for ever.
var errReplaced = &Error{Kind: ErrReplaced, Msg: "this session was resumed on another connection"}

func invalidUsername(why string) error {
	return &Error{Kind: ErrInvalidUsername, Msg: "invalid username: " + why}
}

func invalidChannel(why string) error {
	return &Error{Kind: ErrInvalidChannel, Msg: "invalid channel name: " + why}
}

func invalidText(why string) error {
	return &Error{Kind: ErrInvalidText, Msg: why}
}

// notOnline refuses a private message to someone not online.
func notOnline(name string) error {
	return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("%q is not online: private messages go to users who are online", name)}
}

// kindCodes maps each kind of refusal to its gRPC code.
var kindCodes = []struct {
	kind error
	code codes.Code
}{
	{ErrInvalidUsername, codes.InvalidArgument},
	{ErrInvalidText, codes.InvalidArgument},
	{ErrInvalidRequest, codes.InvalidArgument},
	{ErrInvalidChannel, codes.InvalidArgument},
	{ErrNotFound, codes.NotFound},
	{ErrNotInChannel, codes.FailedPrecondition},
	{ErrAlreadyInChannel, codes.FailedPrecondition},
	{ErrTooManyChannels, codes.ResourceExhausted},
	{ErrTooManyDevices, codes.ResourceExhausted},
	{ErrInboxFull, codes.ResourceExhausted},
	{ErrReplaced, codes.Aborted},
	{ErrUsernameTaken, codes.AlreadyExists},
	{ErrServerFull, codes.ResourceExhausted},
	{ErrRateLimited, codes.ResourceExhausted},
	{ErrTooSlow, codes.ResourceExhausted},
	{ErrTooManyRefusals, codes.ResourceExhausted},
	{ErrRequestTooLarge, codes.ResourceExhausted},
	{ErrNotJoined, codes.FailedPrecondition},
	{ErrAlreadyJoined, codes.FailedPrecondition},
	{ErrJoinTimeout, codes.DeadlineExceeded},
	{ErrShuttingDown, codes.Unavailable},
	{ErrUnavailable, codes.Unavailable},
	{ErrUnauthenticated, codes.Unauthenticated},
	{ErrPermissionDenied, codes.PermissionDenied},
	{ErrBanned, codes.PermissionDenied},
}

// Status turns any error met while serving into the gRPC status a client
// sees: for an error that may not be an *Error. Refusals keep their
// message, even wrapped; context errors keep their meaning; anything else
// is an internal error whose details stay in the server's log.
func Status(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	var e *Error
	if errors.As(err, &e) {
		return e.GRPCStatus()
	}
	if s, ok := status.FromError(err); ok {
		return s
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err)
	}
	return status.New(codes.Internal, "internal error")
}

// count is n with its noun: "1 user", "2 users".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// recvError names why reading a request failed, for the log and for how
// the session ends. The client does not see this: gRPC itself has already
// ended the stream with its own status (RESOURCE_EXHAUSTED for an oversized
// request, INTERNAL "grpc: failed to unmarshal …" for bytes that are not a
// ChatRequest) before Recv returns.
func recvError(err error, maxSize int) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch s.Code() {
	case codes.ResourceExhausted:
		return &Error{Kind: ErrRequestTooLarge, Msg: fmt.Sprintf("request too large: at most %d bytes", maxSize)}
	case codes.Internal:
		if strings.Contains(s.Message(), "failed to unmarshal") {
			return &Error{Kind: ErrInvalidRequest, Msg: "request could not be decoded: " + s.Message()}
		}
	}
	return err
}
