package server

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file applies the admins' actions on users: kicks and bans (the
// admin service that asks for them is admin.go). Each is a command, so
// that it takes effect at one point of the chat's order on every node:
// nothing a banned user sends lands after its ban anywhere.

// maxReasonRunes bounds an admin's reason.
const maxReasonRunes = 200

// ban is a ban in force on a name, and on the names that look like it.
type ban struct {
	key, user   string // the banned name's key, and the name as the admin gave it
	skels       [2]string
	reason, by  string
	since, till time.Time // till is zero for a ban for good
}

// inForce reports whether b is in force at now.
func (b *ban) inForce(now time.Time) bool { return b.till.IsZero() || now.Before(b.till) }

// bannedLocked returns the ban in force on a name of key key and lookalike
// keys skels, or nil. Lock must be held.
func (h *hub) bannedLocked(key string, skels [2]string) *ban {
	if b := h.bans[key]; b != nil && b.inForce(h.now) {
		return b
	}
	for _, b := range h.bans {
		if b.inForce(h.now) && (b.skels[0] == skels[0] || b.skels[0] == skels[1] || b.skels[1] == skels[0] || b.skels[1] == skels[1]) {
			return b
		}
	}
	return nil
}

// refusal is what a join of a banned name is told.
func (b *ban) refusal() *Error {
	until := "for good"
	if !b.till.IsZero() {
		until = "until " + b.till.UTC().Format(time.RFC3339)
	}
	msg := fmt.Sprintf("%q is banned from this chat %s", b.user, until)
	if b.reason != "" {
		msg += ": " + b.reason
	}
	return &Error{Kind: ErrBanned, Msg: msg}
}

// kickLocked removes a user from the chat (see adminService.Kick). Lock
// must be held.
func (h *hub) kickLocked(k *clusterv1.Kick) error {
	_, key, err := CheckUsername(k.GetUser())
	if err != nil {
		return err
	}
	per := h.byKey[key]
	if per == nil {
		return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("%s is not in the chat", k.GetUser())}
	}
	msg := "an admin removed you from the chat"
	if k.GetReason() != "" {
		msg += ": " + k.GetReason()
	}
	h.removeLocked(per, chatv1.LeaveReason_LEAVE_REASON_KICKED, &Error{Kind: ErrPermissionDenied, Msg: msg})
	return nil
}

// banLocked bans a user (see adminService.Ban), and removes it from the
// chat if it is in. Lock must be held.
func (h *hub) banLocked(b *clusterv1.Ban) (*ban, error) {
	display, key, err := CheckUsername(b.GetUser())
	if err != nil {
		return nil, err
	}
	h.pruneBansLocked()
	rec := &ban{key: key, user: display, skels: lookalikeKeys(display, key), reason: b.GetReason(), by: b.GetBy(), since: h.now}
	if d := b.GetDurationMs(); d > 0 {
		rec.till = h.now.Add(time.Duration(d) * time.Millisecond)
	}
	h.bans[key] = rec
	if per := h.byKey[key]; per != nil {
		h.removeLocked(per, chatv1.LeaveReason_LEAVE_REASON_BANNED, rec.refusal())
	}
	return rec, nil
}

// unbanLocked ends a user's ban. Lock must be held.
func (h *hub) unbanLocked(u *clusterv1.Unban) error {
	_, key, err := CheckUsername(u.GetUser())
	if err != nil {
		return err
	}
	h.pruneBansLocked()
	if h.bans[key] == nil {
		return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("%s is not banned", u.GetUser())}
	}
	delete(h.bans, key)
	return nil
}

// pruneBansLocked forgets the bans that have ended. Lock must be held.
func (h *hub) pruneBansLocked() {
	for key, b := range h.bans {
		if !b.inForce(h.now) {
			delete(h.bans, key)
		}
	}
}

// removeLocked takes per out of the chat for good: every stream of it
// ends with err, its sessions cannot be resumed, and, if it was online,
// everyone else sees it leave for reason. Lock must be held.
func (h *hub) removeLocked(per *person, reason chatv1.LeaveReason, err *Error) {
	user, listed := per.user, per.listed
	for _, sess := range slices.Clone(per.devices) {
		if s := sess.stream; s != nil {
			s.endLocked(err, reason)
		}
		if sess.state == stateParked {
			delete(h.parked, sess)
		}
		h.detachLocked(sess)
		h.forgetLocked(sess)
	}
	if listed {
		h.broadcastLocked(newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_UserLeft{
			UserLeft: &chatv1.UserLeft{User: user, Reason: reason},
		}}), per)
	}
}

// bansLocked lists the bans in force, soonest to end first (those for good
// last), then by name. Lock must be held.
func (h *hub) bansLocked() []*ban {
	var out []*ban
	for _, b := range h.bans {
		if b.inForce(h.now) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b *ban) int {
		switch {
		case a.till.IsZero() != b.till.IsZero():
			if a.till.IsZero() {
				return 1
			}
			return -1
		case !a.till.Equal(b.till):
			return a.till.Compare(b.till)
		}
		return cmp.Compare(a.key, b.key)
	})
	return out
}

// bansCopy lists the bans in force for a snapshot. Lock must be held.
func (h *hub) bansCopy() []*clusterv1.BanRecord {
	var out []*clusterv1.BanRecord
	for _, b := range h.bansLocked() {
		pb := &clusterv1.BanRecord{Key: b.key, User: b.user, Reason: b.reason, By: b.by, Since: timestamppb.New(b.since)}
		if !b.till.IsZero() {
			pb.Until = timestamppb.New(b.till)
		}
		out = append(out, pb)
	}
	return out
}

// restoreBansLocked takes a snapshot's bans. Lock must be held.
func (h *hub) restoreBansLocked(snap *clusterv1.Snapshot) {
	for _, pb := range snap.GetBans() {
		b := &ban{key: pb.GetKey(), user: pb.GetUser(), skels: lookalikeKeys(pb.GetUser(), pb.GetKey()), reason: pb.GetReason(), by: pb.GetBy(), since: pb.GetSince().AsTime()}
		if pb.GetUntil() != nil {
			b.till = pb.GetUntil().AsTime()
		}
		h.bans[b.key] = b
	}
}

// systemSender is the sender of what an admin publishes as the chat
// itself: a name no user can have, for it holds a space.
const systemSender = "chatd system"

// botSender is the sender of what an admin publishes as bot: a name no
// user can have either.
func botSender(bot string) string { return bot + " (bot)" }

// publishAdminLocked sends a message as the system or a bot (see
// adminService.Publish), to a channel's members or to one user online, and
// returns its number. A private one is not archived or counted unread: a
// bot is no user to have a conversation with. Lock must be held.
func (h *hub) publishAdminLocked(pb *clusterv1.Publish) (uint64, error) {
	sender, bot := systemSender, ""
	if pb.GetBot() != "" {
		display, _, err := CheckUsername(pb.GetBot())
		if err != nil {
			return 0, &Error{Kind: ErrInvalidRequest, Msg: "a bot's name is checked as a username is: " + err.Error()}
		}
		sender, bot = botSender(display), display
	}
	var to *person
	var ch *channel
	if recipient := pb.GetRecipient(); recipient != "" {
		name, key, err := CheckUsername(recipient)
		if err != nil {
			return 0, notOnline(recipient)
		}
		if to = h.byKey[key]; to == nil || !to.online() {
			return 0, notOnline(name)
		}
	} else {
		name := pb.GetChannel()
		key, err := channelKey(name)
		if err != nil {
			return 0, err
		}
		if ch = h.channels[key]; ch == nil {
			return 0, &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("there is no channel #%s", name)}
		}
	}
	mentions, mentioned := h.mentionsLocked(pb.GetMentions())
	h.msgs++
	msg := &chatv1.Message{
		Id:       h.idPrefix + strconv.FormatUint(h.msgs, 10),
		Sender:   sender,
		Text:     pb.GetText(),
		Mentions: mentions,
		Bot:      bot,
		System:   bot == "",
	}
	if ch != nil {
		msg.Channel = ch.name
		ev := newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_Message{Message: msg}})
		ev.num = h.msgs
		h.archiveLocked(ch.conv, ev)
		h.rememberLocked(h.msgs, ch.conv, sender, pb.GetText(), mentioned)
		h.readChannelLocked(ch, nil, h.msgs, mentioned)
		h.publishLocked(ch, ev, nil)
		ch.history.push(ev.asHistory(), h.cfg.HistorySize, h.cfg.HistoryBytes)
		return h.msgs, nil
	}
	msg.Recipient = to.user.Username
	ev := newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_Message{Message: msg}})
	ev.num = h.msgs
	h.deliverUserLocked(to, ev)
	return h.msgs, nil
}
