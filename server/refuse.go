package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/admission"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// What a refusal costs. A hostile client sends what is refused as fast as
// it is refused: streams past its address's waiting limit, list calls past
// its rate. Refused in the handler, a list call cost as much as answering
// one, and a stream nearly as much (18–28 µs of CPU; see BenchmarkRefuse
// and docs/PERFORMANCE.md), for gRPC starts a goroutine for the call and
// runs the interceptors before the handler looks at it. So:
//
//   - tap refuses those calls first, in gRPC's tap handle: on the
//     connection's reader goroutine, right after the stream's headers are
//     decoded, before any goroutine, interceptor or request exists for it.
//     gRPC writes the status itself. What tap lets through it counts
//     there and then (a Chat stream's place in the waiting room, a list
//     call's token), so that a burst of streams read before the first
//     handler runs is held to the limits too. The handlers keep their own
//     checks for calls that tap did not see: the browser gateway's come
//     through grpc.Server.ServeHTTP, which has no tap.
//   - every refusal before a session exists (a stream refused, whatever
//     for, and a list call refused) is counted against its address's
//     budget of refusals (--refusal-rate-per-ip, --refusal-burst-per-ip).
//     An address past it is shut out for a moment: the connection the
//     refusal came on is closed, and its new ones are not served (see
//     admission.ShutOutFor). However cheap a refusal, a client that keeps
//     a hundred connections busy with them keeps a hundred reader
//     goroutines busy, ahead of everyone's in the scheduler's queue;
//     closing them is what keeps honest latency.
//
// Refusals the tap makes are not logged one by one (a flood would be all
// the log showed, if it were not dropped by --log-rate anyway), and gRPC's
// own metrics (grpc_server_started_total, grpc_server_handled_total) do
// not see them: chatd_refusals_total counts them, and the shut-out is
// logged.

// listAllowedKey marks, in a list call's context, that the tap took the
// call's token from its address's list rate.
type listAllowedKey struct{}

// ticketKey keeps, in a Chat stream's context, the *roomTicket of the
// place in the waiting room that the tap gave it.
type ticketKey struct{}

// roomTicket is a stream's place in the waiting room.
type roomTicket struct {
	*admission.Ticket
	stop func() bool // stops the Leave that the stream's end would call
}

// release gives the place back to the waiting room: the stream joined,
// or ended.
func (t *roomTicket) release() {
	t.stop()
	t.Leave()
}

// tap is the server's tap handle (grpc.InTapHandle). It must not block:
// it runs on a connection's reader goroutine.
func (svc *service) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	switch info.FullMethodName {
	case chatv1.ChatService_Chat_FullMethodName:
		client, _ := svc.lim.FromContext(ctx)
		t, err := svc.room.Enter(client)
		if err != nil {
			r := svc.roomRefusal(err)
			return nil, svc.refuseStatus(ctx, client, r.st, r.err)
		}
		// gRPC cancels a stream's context when the stream ends, however
		// it ends: the place is given back even if the handler never
		// runs (an interceptor refused the call; the server stopped).
		return context.WithValue(ctx, ticketKey{}, &roomTicket{t, context.AfterFunc(ctx, t.Leave)}), nil
	case chatv1.ChatService_ListUsers_FullMethodName, chatv1.ChatService_ListChannels_FullMethodName, chatv1.ChatService_History_FullMethodName:
		client, ok := svc.lim.FromContext(ctx)
		if !ok || !svc.serving() {
			return ctx, nil // the handler refuses a node that is not serving
		}
		if !svc.lim.AllowList(client) {
			return nil, svc.refuseStatus(ctx, client, svc.listRate.st, svc.listRate.err)
		}
		return context.WithValue(ctx, listAllowedKey{}, true), nil
	}
	return ctx, nil
}

// serving reports whether the service answers lists: not on a node that
// has not caught up with its log yet.
func (svc *service) serving() bool { return svc.hub.cl.ready.Load() }

// refuseFrom is refuse for a call from client that has no session: the
// refusal counts against client's budget of refusals too, which may shut
// client out (see admission.Limiter.Refused). A refusal that says the
// server cannot serve (UNAVAILABLE: shutting down, a cluster node cut off)
// is no fault of the client's, and a client that went away was not
// refused: neither counts.
//
// The status of a refusal whose connection is closed for it says so: an
// honest client behind the same address as a hostile one learns why.
func (svc *service) refuseFrom(ctx context.Context, client netip.Addr, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return Status(err).Err()
	}
	return svc.refuseStatus(ctx, client, Status(err), nil)
}

// refuseStatus is refuseFrom for a refusal already turned into its status
// st, and st.Err() if it was made already (or nil).
func (svc *service) refuseStatus(ctx context.Context, client netip.Addr, st *status.Status, stErr error) error {
	svc.met.refusedCode(st.Code())
	if client.IsValid() && st.Code() != codes.Unavailable && svc.lim.Refused(ctx, client) {
		return status.Error(st.Code(), st.Message()+shutOutNote)
	}
	if stErr == nil {
		stErr = st.Err()
	}
	return stErr
}

// A cannedRefusal is a refusal that the tap makes, with its status worked
// out once: the tap refuses with the same few, and a flood with each many
// times over.
type cannedRefusal struct {
	*Error
	st  *status.Status
	err error // st.Err()
}

func newCannedRefusal(e *Error) cannedRefusal {
	st := e.GRPCStatus()
	return cannedRefusal{e, st, st.Err()}
}

// roomRefusal is the refusal of a stream that the waiting room did not
// take, for err.
func (svc *service) roomRefusal(err error) *cannedRefusal {
	if errors.Is(err, admission.ErrFull) {
		return &svc.full
	}
	return &svc.crowded
}

// shutOutNote ends the message of a refusal that finds its address shut
// out.
var shutOutNote = fmt.Sprintf(" (and too many refusals from your address: this connection is closed, and new ones are not served for %s)", admission.ShutOutFor)
