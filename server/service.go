package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/admission"
	"github.com/chatd/chatd/internal/auth"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// drainTimeout bounds how long a session that logged out may take to read
// the events queued for it before its stream is ended anyway.
const drainTimeout = 10 * time.Second

// service implements chat.v1.ChatService on top of a hub.
type service struct {
	chatv1.UnimplementedChatServiceServer

	cfg    Config
	hub    *hub
	lim    *admission.Limiter
	logger *slog.Logger

	auth *auth.Verifier // nil: no sign-in (see auth.go)

	room   *admission.WaitingRoom // streams waiting for their join
	joined atomic.Int64           // streams of sessions
	met    *metrics               // the hub's

	// The refusals for an address's limits that the tap makes too (see
	// refuse.go), made once: the tap is the cheap path.
	crowded, full, listRate cannedRefusal
}

var _ chatv1.ChatServiceServer = (*service)(nil)

func newService(cfg Config, hub *hub, lim *admission.Limiter, logger *slog.Logger) *service {
	return &service{
		cfg: cfg, hub: hub, lim: lim, logger: logger, met: hub.met,
		room:     admission.NewWaitingRoom(cfg.MaxUnjoined, cfg.PerClient.MaxUnjoined),
		crowded:  newCannedRefusal(&Error{Kind: ErrRateLimited, Msg: fmt.Sprintf("too many streams from your address are waiting to join (at most %d): send a join on those first", cfg.PerClient.MaxUnjoined)}),
		full:     newCannedRefusal(&Error{Kind: ErrServerFull, Msg: "the server is full of streams waiting to join, and your address has as many waiting as any other: send a join on those first, or try again in a moment"}),
		listRate: newCannedRefusal(&Error{Kind: ErrRateLimited, Msg: fmt.Sprintf("too many list calls from your address: at most %g per second; wait a moment and try again", cfg.PerClient.ListRate)}),
	}
}

// ListUsers returns who is online now.
func (svc *service) ListUsers(ctx context.Context, _ *chatv1.ListUsersRequest) (*chatv1.ListUsersResponse, error) {
	if err := svc.allowList(ctx); err != nil {
		return nil, err
	}
	return &chatv1.ListUsersResponse{Users: svc.hub.Users()}, nil
}

// ListChannels returns every channel with its member count.
func (svc *service) ListChannels(ctx context.Context, _ *chatv1.ListChannelsRequest) (*chatv1.ListChannelsResponse, error) {
	if err := svc.allowList(ctx); err != nil {
		return nil, err
	}
	return &chatv1.ListChannelsResponse{Channels: svc.hub.Channels()}, nil
}

// allowList refuses a list call past its client address's rate, unless the
// tap counted it already, or from a cluster node that has not caught up
// with the cluster yet (its lists would be the past's).
func (svc *service) allowList(ctx context.Context) error {
	if !svc.serving() {
		return svc.refuse(svc.hub.cl.errNotServing())
	}
	if ctx.Value(listAllowedKey{}) != nil {
		return nil
	}
	if client, ok := svc.lim.FromContext(ctx); ok && !svc.lim.AllowList(client) {
		return svc.refuseStatus(ctx, client, svc.listRate.st, svc.listRate.err)
	}
	return nil
}

// Chat runs one stream: join, then messages until the client leaves, goes
// away or is dropped.
func (svc *service) Chat(stream chatv1.ChatService_ChatServer) error {
	ctx := stream.Context()
	logger := svc.logger.With("peer", peerAddr(ctx))
	client, _ := svc.lim.FromContext(ctx)
	if remote, _ := admission.PeerAddr(ctx); client.IsValid() && client != remote {
		logger = logger.With("client", client.String())
	}

	req, err := svc.admitJoin(ctx, stream, client)
	if err == nil {
		err = checkClientID(req.GetClientId())
	}
	if err != nil {
		if req != nil {
			svc.met.joined(nil, req.GetJoin().GetResumeToken() != "", err)
		}
		logger.Info("join refused", "err", err)
		return svc.refuseFrom(ctx, client, err)
	}
	join := req.GetJoin()
	ctx, username, err := svc.signIn(ctx, join)
	if err != nil {
		logger.Info("join refused", "user", join.GetUsername(), "err", err)
		return svc.refuseFrom(ctx, client, err)
	}
	s, err := svc.hub.join(ctx, joinRequest{
		username: username, token: join.GetResumeToken(), deviceKey: join.GetDeviceKey(), lastSeq: join.GetLastSeq(), client: client,
		// With sign-in, signIn checked that the token names this user.
		signedIn: svc.auth != nil,
	})
	svc.met.joined(s, join.GetResumeToken() != "", err)
	if err != nil {
		logger.Info("join refused", "user", join.GetUsername(), "err", err)
		return svc.refuseFrom(ctx, client, err)
	}
	logger = logger.With("user", s.user.Username)
	if join.GetResumeToken() != "" {
		logger.Info("joined", "recovery", strings.ToLower(strings.TrimPrefix(s.recovery.String(), "RECOVERY_")))
	} else {
		logger.Info("joined")
	}
	return svc.serve(ctx, stream, s, join.GetAcceptBatches(), logger)
}

// admitJoin waits for a new stream's join (returned if it came, even if it
// is refused), with a place in the waiting room (which client's address
// may be refused, and which the stream may have to give up to a newcomer:
// see admission.WaitingRoom), within the limit on joins per second from
// client's address. A stream waiting to join holds its metadata and
// goroutines and has given nothing of itself: the room keeps clients from
// holding thousands of them.
func (svc *service) admitJoin(ctx context.Context, stream chatv1.ChatService_ChatServer, client netip.Addr) (*chatv1.ChatRequest, error) {
	ticket, _ := ctx.Value(ticketKey{}).(*roomTicket) // given by the tap
	if ticket == nil {
		t, err := svc.room.Enter(client)
		if err != nil {
			return nil, svc.roomRefusal(err).Error
		}
		ticket = &roomTicket{t, func() bool { return false }}
	}
	defer ticket.release()
	req, err := svc.awaitJoin(ctx, stream, ticket.Evicted())
	if err != nil {
		return nil, err
	}
	if client.IsValid() && !svc.lim.AllowJoin(client) {
		return req, &Error{Kind: ErrRateLimited, Msg: fmt.Sprintf("too many joins from your address: at most %g per second; wait a few seconds and try again", svc.cfg.PerClient.JoinRate)}
	}
	return req, nil
}

// awaitJoin reads the first request, which must be a join, within the join
// timeout, unless the stream's place in the waiting room is given to a
// newcomer first (evicted is closed).
func (svc *service) awaitJoin(ctx context.Context, stream chatv1.ChatService_ChatServer, evicted <-chan struct{}) (*chatv1.ChatRequest, error) {
	type result struct {
		req *chatv1.ChatRequest
		err error
	}
	// Recv cannot be given a deadline. On timeout the handler returns, which
	// cancels the stream and so ends this Recv and its goroutine.
	got := make(chan result, 1)
	go func() {
		req, err := stream.Recv()
		got <- result{req, err}
	}()
	timer := time.NewTimer(svc.cfg.JoinTimeout)
	defer timer.Stop()
	select {
	case r := <-got:
		switch {
		case r.err == io.EOF:
			return nil, &Error{Kind: ErrNotJoined, Msg: "stream closed before a join: the first request must be a join"}
		case r.err != nil:
			return nil, recvError(r.err, svc.cfg.MaxRecvMsgSize)
		case r.req.GetJoin() == nil:
			return nil, &Error{Kind: ErrNotJoined, Msg: "not joined: the first request must be a join with a username"}
		}
		return r.req, nil
	case <-svc.hub.closing:
		return nil, errShutdown
	case <-timer.C:
		return nil, &Error{Kind: ErrJoinTimeout, Msg: fmt.Sprintf("no join within %s: send a join as the first request", svc.cfg.JoinTimeout)}
	case <-evicted:
		return nil, errEvicted
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// serve runs a joined stream until it ends. The handler's goroutine only
// waits here; a reader goroutine handles requests and one writer goroutine,
// the only caller of stream.Send, writes the stream's queue.
func (svc *service) serve(ctx context.Context, stream chatv1.ChatService_ChatServer, s *stream, batches bool, logger *slog.Logger) error {
	svc.joined.Add(1)
	defer svc.joined.Add(-1)
	drain := make(chan struct{}) // closed after a logout: write what is queued, then stop
	written := make(chan error, 1)
	opt := writerOptions{batches: batches, delay: svc.cfg.WriteDelay}
	go func() { written <- writeLoop(writerStream(stream), s, drain, opt, svc.met) }()
	read := make(chan error, 1)
	go func() { read <- svc.readLoop(stream, s) }()

	select {
	case err := <-read:
		// The reader stops with ErrNotJoined when the hub dropped s (Send
		// on an offline session); if that wins this select over s.ended,
		// the client must still get the hub's reason, not FAILED_PRECONDITION.
		if s.isEnded() {
			return svc.endedByHub(s, written, logger)
		}
		if err != nil {
			svc.leave(s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED, logger, err)
			return Status(err).Err()
		}
		// Logout: the leaver's own user_left is the last event queued for
		// it. If the hub dropped s just before, its reason stands; so it
		// does if s was given up with this node, and ends in a moment
		// (see Cluster.cutOffLocked).
		if !svc.leave(s, chatv1.LeaveReason_LEAVE_REASON_LOGOUT, logger, nil) {
			select {
			case <-s.ended:
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			}
			return svc.endedByHub(s, written, logger)
		}
		close(drain)
		s.queue.signal() // the writer waits on the queue's token only
		// The writer returns the end status if the stream is dropped
		// while draining. A client that half-closed and then stopped
		// reading gets a bounded time, not a stream held open for ever.
		timer := time.NewTimer(drainTimeout)
		defer timer.Stop()
		select {
		case err := <-written:
			return err
		case <-timer.C:
			logger.Info("logout drain timed out", "timeout", drainTimeout)
			return status.Errorf(codes.DeadlineExceeded, "logged out, but events were not read within %s", drainTimeout)
		}
	case err := <-written:
		if s.isEnded() { // the writer saw the hub end the stream first
			return svc.endedByHub(s, nil, logger)
		}
		// Send failed: the stream is broken.
		svc.leave(s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED, logger, err)
		return err
	case <-s.ended:
		// The writer may be blocked in Send on a client that stopped
		// reading. Returning ends the stream, which fails that Send.
		return svc.endedByHub(s, written, logger)
	case <-ctx.Done():
		svc.leave(s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED, logger, nil)
		return status.FromContextError(ctx.Err()).Err()
	case <-signInExpired(ctx):
		// As a disconnect: kept for a resume with a fresh token.
		svc.leave(s, chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED, logger, errSignInExpired)
		return errSignInExpired
	}
}

// endedByHub logs and returns the end of a stream the hub ended. If the
// writer sends what is queued first (see flushedEnd), it waits for that,
// a moment at most; written is the writer's result, nil if it came
// already.
func (svc *service) endedByHub(s *stream, written <-chan error, logger *slog.Logger) error {
	if written != nil && flushedEnd(s.endErr) {
		timer := time.NewTimer(shutdownFlush)
		defer timer.Stop()
		select {
		case <-written:
		case <-timer.C:
		}
	}
	replaced := errors.Is(s.endErr, ErrReplaced)
	svc.met.left(s.endReason, replaced)
	if replaced {
		logger.Info("stream replaced", "by", "a resume of the session")
	} else {
		logger.Info("left", "reason", reasonName(s.endReason))
	}
	return s.endErr // an *Error, which is its own status
}

// leave takes s off the hub and logs it, unless the hub already dropped it.
// It reports whether s was still online.
func (svc *service) leave(s *stream, reason chatv1.LeaveReason, logger *slog.Logger, err error) bool {
	if !svc.hub.Leave(s, reason) {
		return false
	}
	svc.met.left(reason, false)
	if err != nil && Status(err).Code() != codes.Canceled {
		logger.Info("left", "reason", reasonName(reason), "err", err)
	} else {
		logger.Info("left", "reason", reasonName(reason))
	}
	return true
}

// readLoop handles the requests of a joined stream. It returns nil when the
// client logs out (leave, or closing its sending side), or why reading failed
// or the stream was ended for what it sent.
//
// It reads the next request only once the writer has taken the catch-up
// (welcome, channel members and history, a resume's replay) that the last
// one queued, so that a client asking for one after another gets each in
// turn and is never taken for slow, and one that stops reading is no
// longer read either.
func (svc *service) readLoop(stream chatv1.ChatService_ChatServer, s *stream) error {
	ctx := stream.Context()
	var limiter, refusals *rate.Limiter
	if svc.cfg.MessageRate > 0 {
		limiter = rate.NewLimiter(rate.Limit(svc.cfg.MessageRate), svc.cfg.MessageBurst)
	}
	if svc.cfg.RefusalRate > 0 {
		refusals = rate.NewLimiter(rate.Limit(svc.cfg.RefusalRate), svc.cfg.RefusalBurst)
	}
	for {
		select {
		case <-s.queue.catchUpTaken():
		case <-s.ended:
			return errGone
		case <-ctx.Done():
			return ctx.Err()
		}
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return recvError(err, svc.cfg.MaxRecvMsgSize)
		}
		clientID := req.GetClientId()
		if err = checkClientID(clientID); err != nil {
			clientID = ""
		} else {
			switch action := req.GetAction().(type) {
			case *chatv1.ChatRequest_Leave:
				return nil
			case *chatv1.ChatRequest_Join:
				err = &Error{Kind: ErrAlreadyJoined, Msg: fmt.Sprintf("already joined as %q: a stream is one session; open another stream to join again", s.user.Username)}
			case nil:
				err = &Error{Kind: ErrInvalidRequest, Msg: "request has no action: set join, send, leave, join_channel, leave_channel or list_channels"}
			default:
				// Every other request costs the hub work for others (a
				// broadcast, a catch-up, a list): one limit covers them all.
				if limiter != nil && !limiter.Allow() {
					err = &Error{Kind: ErrRateLimited, Msg: fmt.Sprintf("too many requests: at most %g per second; wait a moment and try again", svc.cfg.MessageRate)}
					break
				}
				err = svc.handle(ctx, s, action, clientID)
				if errors.Is(err, ErrNotJoined) {
					return err // dropped by the hub meanwhile; serve returns its reason
				}
			}
		}
		if err == nil {
			continue
		}
		// A client that keeps sending what is refused is broken or
		// probing: each refusal costs an answer, and past a point the
		// session is not worth them.
		if refusals != nil && !refusals.Allow() {
			err = &Error{Kind: ErrTooManyRefusals, Msg: fmt.Sprintf("disconnected: too many refused requests (more than %d at once or %g per second); the last was refused because: %s", svc.cfg.RefusalBurst, svc.cfg.RefusalRate, Status(err).Message())}
			svc.met.refused(err)
			return err
		}
		svc.met.refused(err)
		svc.hub.Reject(s, clientID, err)
	}
}

// handle passes one request of a joined stream to the hub.
func (svc *service) handle(ctx context.Context, s *stream, action any, clientID string) error {
	switch action := action.(type) {
	case *chatv1.ChatRequest_Send:
		kind := msgChannel
		if action.Send.GetRecipient() != "" {
			kind = msgPrivate
		}
		sent := svc.met.messages[kind]
		// A refusal met in the log comes back as a rejected answer, not
		// counted against the session's refusal budget (every message is
		// rate-limited already).
		snd := action.Send
		// The message ends its sender's typing there: typing again may
		// be shown at once.
		delete(s.typed, typingKey(snd.GetChannel(), snd.GetRecipient()))
		return svc.hub.sendPipelined(ctx, s, snd.GetText(), snd.GetChannel(), snd.GetRecipient(), snd.GetReplyTo(), clientID, sent.Inc)
	case *chatv1.ChatRequest_JoinChannel:
		return svc.hub.JoinChannel(ctx, s, action.JoinChannel.GetChannel())
	case *chatv1.ChatRequest_LeaveChannel:
		return svc.hub.LeaveChannel(ctx, s, action.LeaveChannel.GetChannel())
	case *chatv1.ChatRequest_ListChannels:
		svc.hub.listChannels(s, clientID)
		return nil
	case *chatv1.ChatRequest_Typing:
		ty := action.Typing
		if ty.GetStopped() {
			// Typing again may be shown at once.
			delete(s.typed, typingKey(ty.GetChannel(), ty.GetRecipient()))
		} else if !s.typingDue(typingKey(ty.GetChannel(), ty.GetRecipient()), time.Now()) {
			return nil // a refresh too soon after the last: it changes nothing
		}
		return svc.hub.Typing(ctx, s, ty.GetChannel(), ty.GetRecipient(), ty.GetStopped(), clientID)
	case *chatv1.ChatRequest_MarkRead:
		mr := action.MarkRead
		return svc.hub.MarkRead(ctx, s, mr.GetChannel(), mr.GetWith(), mr.GetMessageId())
	}
	return &Error{Kind: ErrInvalidRequest, Msg: "unknown request: this server does not know that action"}
}

// refuse counts a refusal and returns the status the client gets.
func (svc *service) refuse(err error) error {
	svc.met.refused(err)
	return Status(err).Err()
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "unknown"
}

// reasonName is a leave reason as logs show it: "logout", "too_slow", ….
func reasonName(r chatv1.LeaveReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "LEAVE_REASON_"))
}
