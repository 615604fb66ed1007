package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/internal/auth"
	"google.golang.org/protobuf/proto"
)

// MaxHistoryPage is the most messages a History page holds.
const MaxHistoryPage = 100

// History answers a page of a conversation's past messages, for
// scroll-back: from the node's archive if it keeps one (a chatd on its data
// directory), else from what a channel keeps in memory.
func (svc *service) History(ctx context.Context, req *chatv1.HistoryRequest) (*chatv1.HistoryResponse, error) {
	if err := svc.allowList(ctx); err != nil {
		return nil, err
	}
	page, more, err := svc.history(ctx, req)
	if err != nil {
		return nil, svc.refuse(err)
	}
	return &chatv1.HistoryResponse{Messages: page, More: more}, nil
}

func (svc *service) history(ctx context.Context, req *chatv1.HistoryRequest) ([]*chatv1.ChatResponse, bool, error) {
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = MaxHistoryPage
	case limit > MaxHistoryPage:
		return nil, false, &Error{Kind: ErrInvalidRequest, Msg: fmt.Sprintf("limit is at most %d messages a page", MaxHistoryPage)}
	}
	h := svc.hub
	before, err := h.messageNumber(req.GetBeforeId())
	if err != nil {
		return nil, false, err
	}
	var conv, chKey string
	switch {
	case req.GetChannel() != "" && req.GetWith() != "":
		return nil, false, &Error{Kind: ErrInvalidRequest, Msg: "set channel or with, not both: a page is of one conversation"}
	case req.GetChannel() != "":
		_, key, err := CheckChannel(req.GetChannel())
		if err != nil {
			return nil, false, err
		}
		conv, chKey = channelConv(key), key
	case req.GetWith() != "":
		_, other, err := CheckUsername(req.GetWith())
		if err != nil {
			return nil, false, &Error{Kind: ErrInvalidRequest, Msg: "with is not a username: " + err.Error()}
		}
		me, err := svc.caller(ctx, req.GetResumeToken())
		if err != nil {
			return nil, false, err
		}
		conv = privateConv(me, other)
	default:
		return nil, false, &Error{Kind: ErrInvalidRequest, Msg: "set channel (a channel's messages) or with (your private messages with a user)"}
	}
	wires, more, known, err := h.page(conv, chKey, before, limit)
	if err != nil {
		return nil, false, &Error{Kind: ErrUnavailable, Msg: "the history could not be read: try again later"}
	}
	if chKey != "" && !known && len(wires) == 0 {
		return nil, false, &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("there is no channel #%s", strings.TrimPrefix(req.GetChannel(), "#"))}
	}
	out := make([]*chatv1.ChatResponse, 0, len(wires))
	for _, w := range wires {
		resp := &chatv1.ChatResponse{}
		if err := proto.Unmarshal(w, resp); err != nil {
			return nil, false, &Error{Kind: ErrUnavailable, Msg: "the history could not be read: try again later"}
		}
		resp.History = true
		out = append(out, resp)
	}
	return out, more, nil
}

// caller returns the key of the username of the caller of a unary call:
// its sign-in token's subject, or, without sign-in, the user whose session
// token is.
func (svc *service) caller(ctx context.Context, token string) (string, error) {
	if svc.auth != nil {
		id, ok := ctx.Value(identityKey{}).(*auth.Identity)
		if !ok {
			return "", errSignInRequired
		}
		_, key, err := CheckUsername(id.Subject)
		if err != nil {
			return "", &Error{Kind: ErrPermissionDenied, Msg: "your sign-in names no user of this chat"}
		}
		return key, nil
	}
	if token == "" {
		return "", &Error{Kind: ErrUnauthenticated, Msg: "private messages are for their two users: send resume_token, the token of one of your sessions, to show who you are"}
	}
	svc.hub.mu.Lock()
	defer svc.hub.mu.Unlock()
	sess := svc.hub.byToken[string(hashToken(token))]
	if sess == nil {
		return "", &Error{Kind: ErrUnauthenticated, Msg: "resume_token is no session's: join, and send the token of the session"}
	}
	return sess.key(), nil
}

// errSignInRequired refuses a call without a sign-in on a chat that asks
// for one (the interceptor refuses those first; this is a guard).
var errSignInRequired = &Error{Kind: ErrUnauthenticated, Msg: "sign-in required"}

// messageNumber returns the number of the message whose id is id: its
// place among the chat's messages; 0 for an empty id.
func (h *hub) messageNumber(id string) (uint64, error) {
	if id == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(id, h.idPrefix), 10, 64)
	if err != nil || !strings.HasPrefix(id, h.idPrefix) || n == 0 {
		return 0, &Error{Kind: ErrInvalidRequest, Msg: fmt.Sprintf("before_id %q is no message id of this chat", id)}
	}
	return n, nil
}

// page returns up to limit messages of conv before message number before,
// oldest first, whether older ones remain, and whether the conversation is
// one the node knows of. chKey is the channel's key for a channel's
// conversation, empty for a private one.
func (h *hub) page(conv, chKey string, before uint64, limit int) ([][]byte, bool, bool, error) {
	h.mu.Lock()
	known := chKey != "" && h.channels[chKey] != nil
	var kept []*event
	if h.archive == nil && known {
		kept = h.channels[chKey].history.items()
	}
	h.mu.Unlock()
	if h.archive != nil {
		page, more, err := h.archive.Page(conv, before, limit)
		return page, more, known, err
	}
	// No archive: what the channel keeps in memory is all there is.
	var out [][]byte
	i := len(kept) - 1
	for ; i >= 0 && len(out) < limit; i-- {
		w := kept[i].wire
		if w == nil || before != 0 && h.numberOf(w) >= before {
			continue
		}
		out = append(out, w)
	}
	slices.Reverse(out)
	return out, i >= 0, known, nil
}

// numberOf returns the number of the message whose event's encoding is w.
func (h *hub) numberOf(w []byte) uint64 {
	resp := &chatv1.ChatResponse{}
	if proto.Unmarshal(w, resp) != nil {
		return 0
	}
	n, _ := h.messageNumber(resp.GetMessage().GetId())
	return n
}
