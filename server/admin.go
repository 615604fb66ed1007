package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"github.com/chatd/chatd/internal/auth"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file is chat.v1.AdminService: the chat's admins list who is in the
// chat, kick and ban. Its calls are exempt from sign-in's interceptor
// (auth.go) and check their own caller: an admin token (WithAdminToken),
// or with sign-in a token whose admin claim is true.

// WithAdminToken lets whoever presents token ("authorization: Bearer
// <token>") call the admin service. Only its hash is kept.
func WithAdminToken(token string) Option {
	return func(o *options) {
		sum := sha256.Sum256([]byte(token))
		o.adminToken = sum[:]
	}
}

// adminService serves chat.v1.AdminService.
type adminService struct {
	chatv1.UnimplementedAdminServiceServer
	svc       *service
	tokenHash []byte         // WithAdminToken's; nil for none
	verifier  *auth.Verifier // sign-in's, whose tokens' admin claim makes admins; nil for none
	logger    *slog.Logger
}

// admin returns who calls, if an admin, or the refusal, counted against
// the caller's address as every refusal before a session is.
func (a *adminService) admin(ctx context.Context) (string, error) {
	who, err := a.check(ctx)
	if err != nil {
		client, _ := a.svc.lim.FromContext(ctx)
		a.logger.Info("admin call refused", "peer", peerAddr(ctx), "err", err)
		return "", a.svc.refuseFrom(ctx, client, err)
	}
	return who, nil
}

func (a *adminService) check(ctx context.Context) (string, error) {
	if a.tokenHash == nil && a.verifier == nil {
		return "", &Error{Kind: ErrPermissionDenied, Msg: "this chat has no admins: start chatd with --admin-token-file, or with sign-in and admin tokens"}
	}
	token, err := auth.FromMetadata(ctx)
	if err != nil {
		return "", authError(err)
	}
	if token == "" {
		return "", &Error{Kind: ErrUnauthenticated, Msg: "admins only: send the admin token, or an admin's sign-in token, in the metadata \"authorization: Bearer <token>\""}
	}
	if a.tokenHash != nil {
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], a.tokenHash) == 1 {
			return "admin-token", nil
		}
	}
	if a.verifier == nil {
		return "", &Error{Kind: ErrUnauthenticated, Msg: "that is not the admin token"}
	}
	id, err := a.verifier.Verify(token)
	if err != nil {
		return "", authError(err)
	}
	if !id.Admin {
		return "", &Error{Kind: ErrPermissionDenied, Msg: fmt.Sprintf("%s is not an admin of this chat", id.Subject)}
	}
	return id.Subject, nil
}

// reason checks an admin's reason.
func checkReason(reason string) error {
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxReasonRunes {
		return &Error{Kind: ErrInvalidRequest, Msg: fmt.Sprintf("a reason is at most %d characters of UTF-8", maxReasonRunes)}
	}
	return nil
}

func (a *adminService) ListSessions(ctx context.Context, _ *chatv1.ListSessionsRequest) (*chatv1.ListSessionsResponse, error) {
	if _, err := a.admin(ctx); err != nil {
		return nil, err
	}
	return &chatv1.ListSessionsResponse{Users: a.svc.hub.sessionsList()}, nil
}

func (a *adminService) Kick(ctx context.Context, req *chatv1.KickRequest) (*chatv1.KickResponse, error) {
	who, err := a.admin(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkReason(req.GetReason()); err != nil {
		return nil, a.svc.refuse(err)
	}
	out := a.svc.hub.submit(ctx, a.svc.hub.command(&clusterv1.Command{Action: &clusterv1.Command_Kick{Kick: &clusterv1.Kick{
		User: req.GetUser(), Reason: req.GetReason(), By: who,
	}}}), nil)
	a.logger.Info("admin", "action", "kick", "by", who, "user", req.GetUser(), "reason", req.GetReason(), "err", out.err)
	if out.err != nil {
		return nil, a.svc.refuse(out.err)
	}
	return &chatv1.KickResponse{}, nil
}

func (a *adminService) Ban(ctx context.Context, req *chatv1.BanRequest) (*chatv1.BanResponse, error) {
	who, err := a.admin(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkReason(req.GetReason()); err != nil {
		return nil, a.svc.refuse(err)
	}
	d := req.GetDuration().AsDuration()
	if req.GetDuration() != nil && (!req.GetDuration().IsValid() || d < 0) {
		return nil, a.svc.refuse(&Error{Kind: ErrInvalidRequest, Msg: "a ban's duration is positive, or 0 for good"})
	}
	out := a.svc.hub.submit(ctx, a.svc.hub.command(&clusterv1.Command{Action: &clusterv1.Command_Ban{Ban: &clusterv1.Ban{
		User: req.GetUser(), Reason: req.GetReason(), By: who, DurationMs: uint64(d / time.Millisecond),
	}}}), nil)
	a.logger.Info("admin", "action", "ban", "by", who, "user", req.GetUser(), "duration", d, "reason", req.GetReason(), "err", out.err)
	if out.err != nil {
		return nil, a.svc.refuse(out.err)
	}
	return &chatv1.BanResponse{Ban: out.ban.proto()}, nil
}

func (a *adminService) Unban(ctx context.Context, req *chatv1.UnbanRequest) (*chatv1.UnbanResponse, error) {
	who, err := a.admin(ctx)
	if err != nil {
		return nil, err
	}
	out := a.svc.hub.submit(ctx, a.svc.hub.command(&clusterv1.Command{Action: &clusterv1.Command_Unban{Unban: &clusterv1.Unban{User: req.GetUser()}}}), nil)
	a.logger.Info("admin", "action", "unban", "by", who, "user", req.GetUser(), "err", out.err)
	if out.err != nil {
		return nil, a.svc.refuse(out.err)
	}
	return &chatv1.UnbanResponse{}, nil
}

func (a *adminService) Publish(ctx context.Context, req *chatv1.PublishRequest) (*chatv1.PublishResponse, error) {
	who, err := a.admin(ctx)
	if err != nil {
		return nil, err
	}
	text, err := CleanText(req.GetText())
	if err == nil {
		err = checkTarget(req.GetChannel(), req.GetRecipient(), "a message goes to a channel or to a recipient, not both: set only one")
	}
	if err != nil {
		return nil, a.svc.refuse(err)
	}
	h := a.svc.hub
	out := h.submit(ctx, h.command(&clusterv1.Command{Action: &clusterv1.Command_Publish{Publish: &clusterv1.Publish{
		Channel: req.GetChannel(), Recipient: req.GetRecipient(), Text: text, Bot: req.GetBot(), By: who, Mentions: mentionWords(text),
	}}}), nil)
	a.logger.Info("admin", "action", "publish", "by", who, "bot", req.GetBot(), "channel", req.GetChannel(), "recipient", req.GetRecipient(), "err", out.err)
	if out.err != nil {
		return nil, a.svc.refuse(out.err)
	}
	return &chatv1.PublishResponse{MessageId: h.idPrefix + strconv.FormatUint(out.num, 10)}, nil
}

func (a *adminService) ListBans(ctx context.Context, _ *chatv1.ListBansRequest) (*chatv1.ListBansResponse, error) {
	if _, err := a.admin(ctx); err != nil {
		return nil, err
	}
	h := a.svc.hub
	h.mu.Lock()
	bans := h.bansLocked()
	h.mu.Unlock()
	resp := &chatv1.ListBansResponse{}
	for _, b := range bans {
		resp.Bans = append(resp.Bans, b.proto())
	}
	return resp, nil
}

// proto describes b for an admin.
func (b *ban) proto() *chatv1.Ban {
	pb := &chatv1.Ban{User: b.user, Reason: b.reason, By: b.by, Since: timestamppb.New(b.since)}
	if !b.till.IsZero() {
		pb.Until = timestamppb.New(b.till)
	}
	return pb
}

// sessionsList lists every user with its sessions, for the admins: those
// online in the online list's order, then those reconnecting by name.
func (h *hub) sessionsList() []*chatv1.UserSessions {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*chatv1.UserSessions
	add := func(per *person) {
		us := &chatv1.UserSessions{User: per.user, Online: per.listed}
		for _, sess := range per.devices {
			ds := &chatv1.DeviceSession{State: [...]string{"offline", "online", "held", "parked"}[sess.state], Address: sess.addr}
			if sess.state == stateOnline {
				ds.Node = sess.node
				if n := h.nodes[sess.node]; n != nil && n.name != "" {
					ds.Node = n.name
				}
				ds.Since = timestamppb.New(sess.since)
			}
			us.Devices = append(us.Devices, ds)
		}
		out = append(out, us)
	}
	for per := h.head; per != nil; per = per.next {
		add(per)
	}
	var offline []*person
	for _, per := range h.byKey {
		if !per.listed {
			offline = append(offline, per)
		}
	}
	slices.SortFunc(offline, func(a, b *person) int { return cmp.Compare(a.key, b.key) })
	for _, per := range offline {
		add(per)
	}
	return out
}

// addrString is a client address as the admins' list shows it.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
