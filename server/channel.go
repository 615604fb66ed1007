package server

import (
	"slices"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
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
	history eventLog // the last messages, oldest first

	idleSince time.Time // when it last became empty; for eviction
}

// remove takes m out of the channel's members.
func (ch *channel) remove(m *member) {
	for i, x := range ch.members {
		if x == m {
			ch.members = slices.Delete(ch.members, i, i+1) // clears the freed slot
			break
		}
	}
	if len(ch.members) == 0 {
		ch.idleSince = time.Now()
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

// leaveLocked removes m from ch and ch from m's channels. Hub.mu must be
// held.
func (h *Hub) leaveLocked(m *member, ch *channel) {
	h.channelList = nil
	if m.online() {
		ch.online--
	}
	ch.remove(m)
	for i, c := range m.channels {
		if c == ch {
			m.channels = slices.Delete(m.channels, i, i+1)
			break
		}
	}
}
