package server_test

// Tests of errors.go: every error's gRPC code and message.

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{nil, codes.OK, ""},
		{&server.Error{Kind: server.ErrInvalidUsername, Msg: "m"}, codes.InvalidArgument, "m"},
		{&server.Error{Kind: server.ErrInvalidText, Msg: "m"}, codes.InvalidArgument, "m"},
		{&server.Error{Kind: server.ErrInvalidRequest, Msg: "m"}, codes.InvalidArgument, "m"},
		{&server.Error{Kind: server.ErrUsernameTaken, Msg: "m"}, codes.AlreadyExists, "m"},
		{&server.Error{Kind: server.ErrServerFull, Msg: "m"}, codes.ResourceExhausted, "m"},
		{&server.Error{Kind: server.ErrRateLimited, Msg: "m"}, codes.ResourceExhausted, "m"},
		{&server.Error{Kind: server.ErrTooSlow, Msg: "m"}, codes.ResourceExhausted, "m"},
		{&server.Error{Kind: server.ErrRequestTooLarge, Msg: "m"}, codes.ResourceExhausted, "m"},
		{&server.Error{Kind: server.ErrNotJoined, Msg: "m"}, codes.FailedPrecondition, "m"},
		{&server.Error{Kind: server.ErrAlreadyJoined, Msg: "m"}, codes.FailedPrecondition, "m"},
		{&server.Error{Kind: server.ErrJoinTimeout, Msg: "m"}, codes.DeadlineExceeded, "m"},
		{&server.Error{Kind: server.ErrShuttingDown, Msg: "m"}, codes.Unavailable, "m"},
		{fmt.Errorf("wrapped: %w", &server.Error{Kind: server.ErrServerFull, Msg: "m"}), codes.ResourceExhausted, "m"},
		{status.Error(codes.NotFound, "nf"), codes.NotFound, "nf"},
		{context.Canceled, codes.Canceled, context.Canceled.Error()},
		{context.DeadlineExceeded, codes.DeadlineExceeded, context.DeadlineExceeded.Error()},
		// Anything else stays in the server's log.
		{errors.New("disk on fire at /secret/path"), codes.Internal, "internal error"},
	} {
		st := server.Status(tc.err)
		if st.Code() != tc.code || st.Message() != tc.msg {
			t.Errorf("Status(%v) = %v %q; want %v %q", tc.err, st.Code(), st.Message(), tc.code, tc.msg)
		}
	}
}

// An *Error is a status wherever it goes: a handler may return it as it
// is, and gRPC's own status functions read its code and message.
func TestErrorIsItsOwnStatus(t *testing.T) {
	t.Parallel()
	var err error = &server.Error{Kind: server.ErrUsernameTaken, Msg: "taken: pick another"}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.AlreadyExists || st.Message() != "taken: pick another" {
		t.Errorf("status.FromError(%v) = %v, %v; want ALREADY_EXISTS with its message", err, st, ok)
	}
	if got := status.Code(fmt.Errorf("joining: %w", err)); got != codes.AlreadyExists {
		t.Errorf("status.Code of a wrapped *Error = %v; want ALREADY_EXISTS", got)
	}
	// A kind with no code says nothing of itself.
	odd := &server.Error{Kind: errors.New("odd"), Msg: "details"}
	if st := status.Convert(odd); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Errorf("status of an *Error of no known kind = %v; want INTERNAL \"internal error\"", st)
	}
}
