package server

import (
	"slices"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// generalChannel is the channel every new session is in.
const generalChannel = "general"

// channel is a named group of members with its recent messages. Every field
// is owned by the hub: read and written only with hub.mu held.
type channel struct {
	name string // as its creator wrote it
	key  string // case-mapped name; unique among channels
	conv string // channelConv(key): its conversation's name, made once

	// members are the users in it, online and offline, in the order they
	// entered. Every session of a member receives the channel's events
	// (a parked one into its replay), but a member offline is not shown.
	members []member
	online  int         // how many members are online (listed)
	history eventBuffer // the last messages, oldest first, marked as history

	idleSince time.Time // when it last became empty; for eviction
}

// newChannel returns an empty channel named name, of key key.
func newChannel(name, key string) *channel {
	return &channel{name: name, key: key, conv: channelConv(key)}
}

// member is a user in a channel, with its read mark there (the one its
// account keeps under the channel's conversation), so that counting a
// message unread for every member looks nothing up.
type member struct {
	per  *person
	mark *readMark
}

// remove takes per out of the channel's members, and returns it as it was
// there; now is the chat's clock.
func (ch *channel) remove(per *person, now time.Time) member {
	var m member
	for i, x := range ch.members {
		if x.per == per {
			m = x
			ch.members = slices.Delete(ch.members, i, i+1) // clears the freed slot
			break
		}
	}
	if len(ch.members) == 0 {
		ch.idleSince = now
	}
	return m
}

// onlineMembers lists the members who are online, in the order they
// entered.
func (ch *channel) onlineMembers() []*chatv1.User {
	users := make([]*chatv1.User, 0, len(ch.members))
	for _, m := range ch.members {
		if m.per.listed {
			users = append(users, m.per.user)
		}
	}
	return users
}

// info describes the channel for a channel list.
func (ch *channel) info() *chatv1.Channel {
	return &chatv1.Channel{Name: ch.name, MemberCount: uint32(ch.online)}
}

// enterLocked puts per at the end of ch's members and ch in per's channels.
// hub.mu must be held.
func (h *hub) enterLocked(per *person, ch *channel) {
	h.channelList = nil
	// Whoever enters a channel has read what came before: its history is
	// shown as that.
	mk := per.acct.mark(ch.conv, ch.name, h.msgs)
	mk.num, mk.unread, mk.mentions = h.msgs, 0, 0
	ch.members = append(ch.members, member{per: per, mark: mk})
	per.channels = append(per.channels, ch)
	if per.listed {
		ch.online++
	}
}

// exitLocked removes per from ch and ch from per's channels. hub.mu must be
// held.
func (h *hub) exitLocked(per *person, ch *channel) {
	h.channelList = nil
	if per.listed {
		ch.online--
	}
	ch.remove(per, h.now)
	delete(per.acct.reads, ch.conv)
	h.untypeChannelLocked(per, ch)
	for i, c := range per.channels {
		if c == ch {
			per.channels = slices.Delete(per.channels, i, i+1)
			break
		}
	}
}

// makeRoomLocked makes room for a new channel if the server is at its
// limit, by dropping the empty channel that has been empty the longest. It
// reports whether there is room.
func (h *hub) makeRoomLocked() bool {
	if len(h.channels) < h.cfg.MaxChannels {
		return true
	}
	var oldest *channel
	for _, ch := range h.channels {
		if len(ch.members) == 0 && ch != h.general && (oldest == nil || ch.idleSince.Before(oldest.idleSince) ||
			// Ties broken by key, so that every node drops the same one.
			ch.idleSince.Equal(oldest.idleSince) && ch.key < oldest.key) {
			oldest = ch
		}
	}
	if oldest == nil {
		return false
	}
	delete(h.channels, oldest.key)
	h.channelList = nil
	return true
}

// channelCatchUpLocked queues for sess that it is in ch, with ch's members
// and then its history: the channel's catch-up. Like a welcome, it does
// not count against the queue's limit: however small the queue, or however
// many channels an incomplete resume restores, a client is not dropped for
// being told where it is. For a session whose stream is on another node
// only the numbering is kept. hub.mu must be held.
func (h *hub) channelCatchUpLocked(sess *session, ch *channel) {
	history := ch.history.items()
	// The channel_joined is not kept in sess's replay: it lists every member,
	// and a join storm would keep N such lists of up to N users. A resume
	// that missed it gets a fresh catch-up instead.
	var joined *event
	if sess.stream != nil {
		joined = privateEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_ChannelJoined{
			ChannelJoined: &chatv1.ChannelJoined{
				Channel:      ch.name,
				User:         sess.user(),
				Members:      ch.onlineMembers(),
				HistoryCount: uint32(len(history)),
				Read:         h.channelReadLocked(sess.person, ch),
			},
		}})
	}
	h.deliverCatchUpLocked(sess, nil, joined)
	for _, ev := range history {
		h.deliverCatchUpLocked(sess, ev, ev)
	}
}
