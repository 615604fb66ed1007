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
// is owned by the hub: read and written only with Hub.mu held.
type channel struct {
	name string // as its creator wrote it
	key  string // case-mapped name; unique among channels

	// members are online and parked members, in the order they entered.
	// Parked members still receive the channel's events (into their logs)
	// but are not shown as members.
	members []*member
	online  int      // how many members are online
	history eventLog // the last messages, oldest first, marked as history

	idleSince time.Time // when it last became empty; for eviction
}

// remove takes m out of the channel's members; now is the chat's clock.
func (ch *channel) remove(m *member, now time.Time) {
	for i, x := range ch.members {
		if x == m {
			ch.members = slices.Delete(ch.members, i, i+1) // clears the freed slot
			break
		}
	}
	if len(ch.members) == 0 {
		ch.idleSince = now
	}
}

// onlineMembers lists the members who are online, in the order they
// entered.
func (ch *channel) onlineMembers() []*chatv1.User {
	users := make([]*chatv1.User, 0, len(ch.members))
	for _, m := range ch.members {
		if m.online() {
			users = append(users, m.user)
		}
	}
	return users
}

// info describes the channel for a channel list.
func (ch *channel) info() *chatv1.Channel {
	return &chatv1.Channel{Name: ch.name, MemberCount: uint32(ch.online)}
}

// enterLocked puts m at the end of ch's members and ch in m's channels.
// Hub.mu must be held.
func (h *Hub) enterLocked(m *member, ch *channel) {
	h.channelList = nil
	ch.members = append(ch.members, m)
	m.channels = append(m.channels, ch)
	if m.online() {
		ch.online++
	}
}

// exitLocked removes m from ch and ch from m's channels. Hub.mu must be
// held.
func (h *Hub) exitLocked(m *member, ch *channel) {
	h.channelList = nil
	if m.online() {
		ch.online--
	}
	ch.remove(m, h.now)
	for i, c := range m.channels {
		if c == ch {
			m.channels = slices.Delete(m.channels, i, i+1)
			break
		}
	}
}

// makeRoomLocked makes room for a new channel if the server is at its
// limit, by dropping the empty channel that has been empty the longest. It
// reports whether there is room.
func (h *Hub) makeRoomLocked() bool {
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

// channelSnapshotLocked queues for m that it is in ch, with ch's members
// and then its history. Like a welcome, a snapshot does not count against
// the queue's limit: however small the queue, or however many channels an
// incomplete resume restores, a client is not dropped for being told where
// it is. For a member whose stream is on another node only the numbering
// is kept. Hub.mu must be held.
func (h *Hub) channelSnapshotLocked(m *member, ch *channel) {
	history := ch.history.items()
	// The channel_joined is not kept in m's log: it lists every member,
	// and a join storm would keep N such lists of up to N users. A resume
	// that missed it gets a fresh snapshot instead.
	var joined *Event
	if m.att != nil {
		joined = privateEvent(&chatv1.ChatResponse{Time: timestamppb.New(h.now), Event: &chatv1.ChatResponse_ChannelJoined{
			ChannelJoined: &chatv1.ChannelJoined{
				Channel:      ch.name,
				User:         m.user,
				Members:      ch.onlineMembers(),
				HistoryCount: uint32(len(history)),
			},
		}})
	}
	h.deliverExtraLocked(m, nil, joined)
	for _, ev := range history {
		h.deliverExtraLocked(m, ev, ev)
	}
}
