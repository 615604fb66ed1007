package server

import (
	"context"
	"errors"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/admission"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// What a refusal costs. A hostile client sends what is refused as fast as
// it is refused: streams past its address's waiting limit, list calls past
// its rate. Refused in the handler, a list call cost as much as answering
// one, and a stream nearly as much (see BenchmarkRefuse), for gRPC starts
// a goroutine for the call and runs the interceptors before the handler
// looks at it.
//
// So tap refuses those calls first, in gRPC's tap handle: on the
// connection's reader goroutine, right after the stream's headers are
// decoded, before any goroutine, interceptor or request exists for it.
// gRPC writes the status itself. What tap lets through it counts there and
// then (a Chat stream's place in the waiting room, a list call's token),
// so that a burst of streams read before the first handler runs is held
// to the limits too. The handlers keep their own checks for calls that tap
// did not see: the browser gateway's come through grpc.Server.ServeHTTP,
// which has no tap.
//
// Refusals the tap makes are not logged one by one (a flood would be all
// the log showed, if it were not dropped by --log-rate anyway), and gRPC's
// own metrics (grpc_server_started_total, grpc_server_handled_total) do
// not see them: chatd_refusals_total counts them.

// listAllowedKey marks, in a list call's context, that the tap took the
// call's token from its address's list rate.
type listAllowedKey struct{}

// ticketKey keeps, in a Chat stream's context, the *heldTicket of the
// place in the waiting room that the tap gave it.
type ticketKey struct{}

// heldTicket is a stream's place in the waiting room.
type heldTicket struct {
	*admission.Ticket
	stop func() bool // stops the Leave that the stream's end would call
}

// leave gives the place up: the stream joined, or ended.
func (h *heldTicket) leave() {
	h.stop()
	h.Leave()
}

// tap is the server's tap handle (grpc.InTapHandle). It must not block:
// it runs on a connection's reader goroutine.
func (svc *Service) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	switch info.FullMethodName {
	case chatv1.ChatService_Chat_FullMethodName:
		client, _ := svc.lim.FromContext(ctx)
		t, err := svc.room.Enter(client)
		if err != nil {
			return nil, svc.refuseWith(svc.roomRefusal(err))
		}
		// gRPC cancels a stream's context when the stream ends, however
		// it ends: the place is given back even if the handler never
		// runs (an interceptor refused the call; the server stopped).
		return context.WithValue(ctx, ticketKey{}, &heldTicket{t, context.AfterFunc(ctx, t.Leave)}), nil
	case chatv1.ChatService_ListUsers_FullMethodName, chatv1.ChatService_ListChannels_FullMethodName:
		client, ok := svc.lim.FromContext(ctx)
		if !ok || !svc.serving() {
			return ctx, nil // the handler refuses a node that is not serving
		}
		if !svc.lim.AllowList(client) {
			return nil, svc.refuseWith(&svc.listRate)
		}
		return context.WithValue(ctx, listAllowedKey{}, true), nil
	}
	return ctx, nil
}

// serving reports whether the service answers lists: not on a cluster node
// that has not caught up with the cluster yet.
func (svc *Service) serving() bool {
	cl := svc.hub.cl
	return cl == nil || cl.ready.Load()
}

// refuseWith counts the refusal r and returns the status the client gets.
func (svc *Service) refuseWith(r *refusal) error {
	svc.met.refusedCode(r.st.Code())
	return r.err
}

// A refusal is a refusal that the tap makes, with its status worked out
// once: the tap refuses with the same few, and a flood with each many
// times over.
type refusal struct {
	*Error
	st  *status.Status
	err error // st.Err()
}

func newRefusal(e *Error) refusal {
	st := Status(e)
	return refusal{e, st, st.Err()}
}

// roomRefusal is the refusal of a stream that the waiting room did not
// take, for err.
func (svc *Service) roomRefusal(err error) *refusal {
	if errors.Is(err, admission.ErrFull) {
		return &svc.full
	}
	return &svc.crowded
}
