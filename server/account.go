package server

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file keeps what the chat knows of a user beyond its sessions: where
// it stands in each conversation (read marks, and how much came after),
// and, with sign-in, the private messages kept for it while it is offline.

// account is what the chat keeps of a user beyond its sessions. It lives
// while the user is in the chat (person.acct) and, once a join of the user
// was signed in, for good: the name is then an identity, and what it read
// and what was sent to it while it was away are its own. Without sign-in a
// name is anyone's once its sessions end, and so is nothing else.
//
// Every field is owned by the hub: read and written only with hub.mu held.
type account struct {
	key, name string // the user's key, and its name as last shown
	signedIn  bool   // a join of the user was signed in: kept for good

	reads map[string]*readMark // by conversation: channelConv, privateMark

	inbox      []*event // private messages sent while it was offline, oldest first
	inboxBytes int      // what inbox's events take
}

// readMark is a user's read mark in one conversation.
type readMark struct {
	name   string   // the channel's or the other user's name, as shown
	num    uint64   // the number of the last message read; 0 for none
	unread uint32   // messages of others after it
	recent []uint64 // private: the numbers of the last unread messages, oldest first, at most recentUnread

	mentions  uint32   // of the unread messages, those that mention the user
	mentioned []uint64 // private: the numbers of the last unread messages that mention the user, as recent
}

// maxPrivateMarks is how many private conversations an account keeps
// read marks for: past it, a new one takes the place of the one read
// longest ago, so that users writing to someone one after another cannot
// grow what the chat keeps of them without bound.
const maxPrivateMarks = 1000

// recentUnread is how many unread private messages of one conversation a
// read mark keeps the numbers of, so that marking one of them read leaves
// the exact count of those after it.
const recentUnread = 100

// privateMark names, among a user's read marks, its private conversation
// with the user of key userKey (a channel's is channelConv's name).
func privateMark(userKey string) string { return "@" + userKey }

// accountLocked returns the account of the user with key, made if there
// is none. Lock must be held.
func (h *hub) accountLocked(key, name string) *account {
	acct := h.accounts[key]
	if acct == nil {
		acct = &account{key: key, reads: make(map[string]*readMark)}
		h.accounts[key] = acct
	}
	acct.name = name
	return acct
}

// mark returns acct's read mark of conversation conv, shown as name,
// made with everything before message number num read if there is none.
func (acct *account) mark(conv, name string, num uint64) *readMark {
	mk := acct.reads[conv]
	if mk == nil {
		if conv[0] == '@' {
			acct.makeRoom()
		}
		mk = &readMark{num: num}
		acct.reads[conv] = mk
	}
	mk.name = name
	return mk
}

// makeRoom drops the private read mark read longest ago if acct has
// maxPrivateMarks of them.
func (acct *account) makeRoom() {
	n, oldest := 0, ""
	for conv, mk := range acct.reads {
		if conv[0] != '@' {
			continue
		}
		n++
		// Ties broken by conversation, so that every node drops the same.
		if o := acct.reads[oldest]; oldest == "" || mk.num < o.num || mk.num == o.num && conv < oldest {
			oldest = conv
		}
	}
	if n >= maxPrivateMarks {
		delete(acct.reads, oldest)
	}
}

// readState describes mk for a client.
func (h *hub) readState(mk *readMark, ch *channel, with string) *chatv1.ReadState {
	rs := &chatv1.ReadState{With: with, Unread: mk.unread, Mentions: mk.mentions}
	if ch != nil {
		rs.Channel = ch.name
	}
	if mk.num > 0 {
		rs.LastReadId = h.idPrefix + strconv.FormatUint(mk.num, 10)
	}
	return rs
}

// channelReadLocked is per's read state in ch, which per is in. Lock must
// be held.
func (h *hub) channelReadLocked(per *person, ch *channel) *chatv1.ReadState {
	return h.readState(per.acct.mark(ch.conv, ch.name, h.msgs), ch, "")
}

// unreadPrivateLocked lists acct's private conversations with unread
// messages, by the other user's key. Lock must be held.
func (h *hub) unreadPrivateLocked(acct *account) []*chatv1.ReadState {
	var convs []string
	for conv, mk := range acct.reads {
		if conv[0] == '@' && mk.unread > 0 {
			convs = append(convs, conv)
		}
	}
	slices.Sort(convs)
	out := make([]*chatv1.ReadState, len(convs))
	for i, conv := range convs {
		mk := acct.reads[conv]
		out[i] = h.readState(mk, nil, mk.name)
	}
	return out
}

// readChannelLocked counts a message of number num to ch, mentioning the
// users of keys mentioned: unread for every member but from, for whom the
// channel is read up to it. Lock must be held.
func (h *hub) readChannelLocked(ch *channel, from *person, num uint64, mentioned []string) {
	for _, m := range ch.members {
		mk := m.mark
		if m.per == from {
			mk.num, mk.unread, mk.mentions = num, 0, 0
			continue
		}
		mk.unread++
		if len(mentioned) > 0 && slices.Contains(mentioned, m.per.key) {
			mk.mentions++
		}
	}
}

// readPrivateLocked counts a private message of number num from from to
// to: unread for to, and the conversation read up to it for from. Lock
// must be held.
func (h *hub) readPrivateLocked(from, to *account, num uint64, mentioned bool) {
	mk := from.mark(privateMark(to.key), to.name, num-1)
	mk.num, mk.unread, mk.recent, mk.mentions, mk.mentioned = num, 0, nil, 0, nil
	if to == from {
		return
	}
	mk = to.mark(privateMark(from.key), from.name, num-1)
	mk.unread++
	mk.recent = pushBounded(mk.recent, num)
	if mentioned {
		mk.mentions++
		mk.mentioned = pushBounded(mk.mentioned, num)
	}
}

// pushBounded appends num to nums, dropping the first past recentUnread.
func pushBounded(nums []uint64, num uint64) []uint64 {
	if len(nums) == recentUnread {
		nums = slices.Delete(nums, 0, 1)
	}
	return append(nums, num)
}

// markReadLocked moves a user's read mark forward (see hub.MarkRead), and
// tells every device of the user. Lock must be held.
func (h *hub) markReadLocked(node string, mr *clusterv1.MarkRead) error {
	sess, err := h.streamLocked(node, mr.GetStream())
	if err != nil {
		return err
	}
	per, num := sess.person, mr.GetNumber()
	if num == 0 || num > h.msgs {
		return &Error{Kind: ErrInvalidRequest, Msg: "that is no message of this chat"}
	}
	// A recent message of another conversation is refused; an older one
	// is taken as the place in the chat's order it is.
	other := func(conv string) error {
		if m := h.recentByNum[num]; m != nil && m.conv != conv {
			return &Error{Kind: ErrNotFound, Msg: "that message is not one of this conversation's"}
		}
		return nil
	}
	var rs *chatv1.ReadState
	if name := mr.GetChannel(); name != "" {
		_, key, err := CheckChannel(name)
		if err != nil {
			return err
		}
		ch := h.channels[key]
		if ch == nil || !per.in(ch) {
			return &Error{Kind: ErrNotInChannel, Msg: fmt.Sprintf("you are not in #%s", name)}
		}
		if err := other(ch.conv); err != nil {
			return err
		}
		mk := per.acct.mark(ch.conv, ch.name, h.msgs)
		if num <= mk.num {
			return nil
		}
		// Counted in what the channel keeps: past its history, only that.
		mk.num, mk.unread, mk.mentions = num, 0, 0
		for _, ev := range ch.history.items() {
			if ev != nil && h.eventNumber(ev) > num {
				mk.unread++
				if h.mentionsUser(ev, per.key) {
					mk.mentions++
				}
			}
		}
		rs = h.readState(mk, ch, "")
	} else {
		display, key, err := CheckUsername(mr.GetWith())
		if err != nil {
			return notOnline(mr.GetWith())
		}
		mk := per.acct.reads[privateMark(key)]
		if mk == nil {
			other := h.accounts[key]
			if other == nil {
				return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf("you have no conversation with %s", display)}
			}
			mk = per.acct.mark(privateMark(key), other.name, 0)
		}
		if err := other(privateConv(per.key, key)); err != nil {
			return err
		}
		if num <= mk.num {
			return nil
		}
		mk.num = num
		i, _ := slices.BinarySearch(mk.recent, num+1)
		mk.recent = slices.Clip(mk.recent[i:])
		mk.unread = uint32(len(mk.recent))
		i, _ = slices.BinarySearch(mk.mentioned, num+1)
		mk.mentioned = slices.Clip(mk.mentioned[i:])
		mk.mentions = uint32(len(mk.mentioned))
		rs = h.readState(mk, nil, mk.name)
	}
	h.deliverUserLocked(per, newEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_Read{Read: rs}}))
	return nil
}

// mentionsUser reports whether the message ev is mentions the user of key:
// as the chat's index of recent messages says, or, for an older one, as
// its encoding does.
func (h *hub) mentionsUser(ev *event, key string) bool {
	if m := h.recentByNum[h.eventNumber(ev)]; m != nil {
		return slices.Contains(m.mentions, key)
	}
	resp := &chatv1.ChatResponse{}
	if ev.wire == nil || proto.Unmarshal(ev.wire, resp) != nil {
		return false
	}
	for _, name := range resp.GetMessage().GetMentions() {
		if _, k, err := CheckUsername(name); err == nil && k == key {
			return true
		}
	}
	return false
}

// eventNumber is the number of the message ev is, read from its encoding
// the first time.
func (h *hub) eventNumber(ev *event) uint64 {
	if ev.num == 0 && ev.wire != nil {
		ev.num = h.numberOf(ev.wire)
	}
	return ev.num
}

// inboxLocked keeps ev, a private message, for acct, offline, or refuses it
// if acct's inbox is full. Lock must be held.
func (h *hub) inboxLocked(acct *account, ev *event) error {
	if len(acct.inbox) >= h.cfg.OfflineInbox || acct.inboxBytes+ev.bytes() > h.cfg.OfflineInboxBytes {
		return &Error{Kind: ErrInboxFull, Msg: fmt.Sprintf("%s is offline with %s waiting, the most kept: try again once they are back", acct.name, count(len(acct.inbox), "message", "messages"))}
	}
	acct.inbox = append(acct.inbox, ev)
	acct.inboxBytes += ev.bytes()
	return nil
}

// deliverInboxLocked gives per's devices the private messages kept for it
// while it was offline, once. Lock must be held.
func (h *hub) deliverInboxLocked(per *person) {
	acct := per.acct
	for _, ev := range acct.inbox {
		h.deliverUserLocked(per, ev)
	}
	acct.inbox, acct.inboxBytes = nil, 0
}

// forgetAccountLocked drops acct with its user's last session, unless
// the user signed in. Lock must be held.
func (h *hub) forgetAccountLocked(acct *account) {
	if !acct.signedIn {
		delete(h.accounts, acct.key)
	}
}

// accountsCopy lists the accounts for a snapshot, by key. Lock must be held.
func (h *hub) accountsCopy() []*clusterv1.Account {
	out := make([]*clusterv1.Account, 0, len(h.accounts))
	for _, acct := range h.accounts {
		pa := &clusterv1.Account{Key: acct.key, Name: acct.name, SignedIn: acct.signedIn}
		for conv, mk := range acct.reads {
			pa.Reads = append(pa.Reads, &clusterv1.ReadMark{Conv: conv, Name: mk.name, Number: mk.num, Unread: mk.unread, Recent: slices.Clone(mk.recent),
				Mentions: mk.mentions, Mentioned: slices.Clone(mk.mentioned)})
		}
		slices.SortFunc(pa.Reads, func(a, b *clusterv1.ReadMark) int { return cmp.Compare(a.GetConv(), b.GetConv()) })
		out = append(out, pa)
	}
	slices.SortFunc(out, func(a, b *clusterv1.Account) int { return cmp.Compare(a.GetKey(), b.GetKey()) })
	return out
}
