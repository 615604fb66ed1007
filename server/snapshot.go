package server

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file writes the chat's state as a cluster snapshot, and reads it
// back on a node that starts: everything applying the log depends on, and
// nothing of this node's own (streams, client addresses).

// stateCopy is the hub's state as of a log position, copied under the
// hub's lock as cheaply as can be (slices of pointers to what is never
// modified: events, users), to be encoded outside it (see proto).
type stateCopy struct {
	seq            uint64
	now, liveSince time.Time
	msgs, attaches uint64
	settings       *clusterv1.Settings
	members        []sessionCopy
	channels       []channelCopy
	nodes          []*clusterv1.Node
	accounts       []*clusterv1.Account // Inbox not set: see inboxes
	recent         []*clusterv1.RecentMessage
	bans           []*clusterv1.BanRecord
	inboxes        [][]*event // each account's inbox
}

type sessionCopy struct {
	key, tokenHash, node string
	deviceHash, addr     string
	since                time.Time
	user                 *chatv1.User
	state                sessionState
	attach, seq, gen     uint64
	deadline             time.Time
	replay               []*event
	channels             []string
}

type channelCopy struct {
	name, key string
	members   []string
	history   []*event
	idleSince time.Time
}

// snapshotLocked copies the hub's state as of log position seq. hub.mu
// must be held.
func (h *hub) snapshotLocked(seq uint64) *stateCopy {
	c := &stateCopy{seq: seq, now: h.now, liveSince: h.live.since, msgs: h.msgs, attaches: h.attaches, settings: h.settings()}
	// A user's sessions one after another, users online first, in the
	// online list's order, then the others by key.
	c.members = make([]sessionCopy, 0, len(h.byToken))
	add := func(per *person) {
		var channels []string
		for _, ch := range per.channels {
			channels = append(channels, ch.key)
		}
		for _, sess := range per.devices {
			c.members = append(c.members, sessionCopy{key: per.key, tokenHash: sess.tokenHash, deviceHash: per.deviceHash, node: sess.node,
				user: per.user, state: sess.state, attach: sess.attach, seq: sess.seq, gen: sess.gen, deadline: sess.deadline,
				replay: sess.replay.items(), channels: channels, addr: sess.addr, since: sess.since})
		}
	}
	for per := h.head; per != nil; per = per.next {
		add(per)
	}
	offline := make([]*person, 0, len(h.byKey)-h.listed)
	for _, per := range h.byKey {
		if !per.listed {
			offline = append(offline, per)
		}
	}
	slices.SortFunc(offline, func(a, b *person) int { return cmp.Compare(a.key, b.key) })
	for _, per := range offline {
		add(per)
	}
	for _, ch := range h.channels {
		cc := channelCopy{name: ch.name, key: ch.key, history: ch.history.items(), idleSince: ch.idleSince}
		for _, m := range ch.members {
			cc.members = append(cc.members, m.per.key)
		}
		c.channels = append(c.channels, cc)
	}
	slices.SortFunc(c.channels, func(a, b channelCopy) int { return cmp.Compare(a.key, b.key) })
	c.recent = h.recentCopy()
	c.bans = h.bansCopy()
	c.accounts = h.accountsCopy()
	c.inboxes = make([][]*event, len(c.accounts))
	for i, pa := range c.accounts {
		c.inboxes[i] = slices.Clone(h.accounts[pa.GetKey()].inbox)
	}
	for id, p := range h.nodes {
		c.nodes = append(c.nodes, &clusterv1.Node{Id: id, Name: p.name, LastHeard: timestamppb.New(p.lastHeard)})
	}
	slices.SortFunc(c.nodes, func(a, b *clusterv1.Node) int { return cmp.Compare(a.GetId(), b.GetId()) })
	return c
}

// proto encodes the copy as a snapshot. It needs no lock: what the copy
// points to is never modified.
func (c *stateCopy) proto() *clusterv1.Snapshot {
	snap := &clusterv1.Snapshot{
		Seq:       c.seq,
		Time:      timestamppb.New(c.now),
		LiveSince: timestamppb.New(c.liveSince),
		Messages:  c.msgs,
		Attaches:  c.attaches,
		Settings:  c.settings,
		Nodes:     c.nodes,
		Recent:    c.recent,
		Bans:      c.bans,
	}
	// Events are shared by many replays and histories: each is written once.
	index := make(map[*event]uint32)
	ref := func(ev *event) uint32 {
		if ev == nil {
			return 0
		}
		if i, ok := index[ev]; ok {
			return i
		}
		snap.Events = append(snap.Events, &clusterv1.Event{Response: ev.wire, History: ev.history})
		i := uint32(len(snap.Events))
		index[ev] = i
		return i
	}
	for _, m := range c.members {
		pm := &clusterv1.Member{
			Key:        m.key,
			User:       m.user,
			TokenHash:  []byte(m.tokenHash),
			DeviceHash: []byte(m.deviceHash),
			ClientAddr: m.addr,
			State:      clusterv1.MemberState(m.state),
			Node:       m.node,
			Attach:     m.attach,
			Seq:        m.seq,
			ParkCount:  m.gen,
			Channels:   m.channels,
		}
		if m.state != stateOnline {
			pm.Deadline = timestamppb.New(m.deadline)
		} else {
			pm.Since = timestamppb.New(m.since)
		}
		pm.Log = make([]uint32, len(m.replay))
		for i, ev := range m.replay {
			pm.Log[i] = ref(ev)
		}
		snap.Members = append(snap.Members, pm)
	}
	for i, pa := range c.accounts {
		for _, ev := range c.inboxes[i] {
			pa.Inbox = append(pa.Inbox, ref(ev))
		}
		snap.Accounts = append(snap.Accounts, pa)
	}
	for _, ch := range c.channels {
		pc := &clusterv1.Channel{Name: ch.name, Key: ch.key, Members: ch.members, IdleSince: timestamppb.New(ch.idleSince)}
		for _, ev := range ch.history {
			pc.History = append(pc.History, ref(ev))
		}
		snap.Channels = append(snap.Channels, pc)
	}
	return snap
}

// restoreLocked replaces the hub's state, which must be new, with snap's.
// hub.mu must be held.
func (h *hub) restoreLocked(snap *clusterv1.Snapshot) error {
	want, got := h.settings(), snap.GetSettings()
	if got != nil && got.GetMaxDevicesPerUser() == 0 {
		// Saved by a chatd before devices and inboxes, which had one
		// device per user and no inbox: the cluster takes this node's
		// limits, as every node of this version does alike.
		got = proto.CloneOf(got)
		got.MaxDevicesPerUser = want.GetMaxDevicesPerUser()
		got.OfflineInbox, got.OfflineInboxBytes = want.GetOfflineInbox(), want.GetOfflineInboxBytes()
	}
	if got != nil && !sameSettings(want, got) {
		if !h.cl.cfg.Solo {
			return fmt.Errorf("cluster: this node's settings differ from the cluster's (%s here, %s in the cluster): every node must run with the same", describeSettings(want), describeSettings(got))
		}
		// A chat of its own takes its new settings from here on: what
		// the log holds after the snapshot (at most a snapshot interval,
		// after a crash) is applied with them too.
		h.cl.logger.Info("the settings changed since the chat's state was saved: the new ones apply from now on", "saved", describeSettings(got), "now", describeSettings(want))
	}
	h.now = snap.GetTime().AsTime()
	h.live = liveness{since: snap.GetLiveSince().AsTime(), last: h.now}
	h.msgs, h.attaches = snap.GetMessages(), snap.GetAttaches()

	events := make([]*event, len(snap.GetEvents()))
	for i, pe := range snap.GetEvents() {
		events[i] = &event{wire: pe.GetResponse(), size: eventOverhead + cap(pe.GetResponse()), history: pe.GetHistory()}
	}
	event := func(i uint32) (*event, error) {
		if i == 0 {
			return nil, nil
		}
		if int(i) > len(events) {
			return nil, fmt.Errorf("cluster: the snapshot refers to event %d of %d", i, len(events))
		}
		return events[i-1], nil
	}

	clear(h.channels)
	for _, pc := range snap.GetChannels() {
		ch := newChannel(pc.GetName(), pc.GetKey())
		ch.idleSince = pc.GetIdleSince().AsTime()
		for _, i := range pc.GetHistory() {
			ev, err := event(i)
			if err != nil {
				return err
			}
			if ev != nil && !ev.history {
				// A snapshot from a node that kept the message itself.
				ev = ev.asHistory()
			}
			ch.history.push(ev, h.cfg.HistorySize, h.cfg.HistoryBytes)
		}
		h.channels[ch.key] = ch
	}
	if h.general = h.channels[generalChannel]; h.general == nil {
		return fmt.Errorf("cluster: the snapshot has no channel %q", generalChannel)
	}

	if err := h.restoreRecentLocked(snap); err != nil {
		return err
	}
	h.restoreBansLocked(snap)
	for _, pa := range snap.GetAccounts() {
		acct := &account{key: pa.GetKey(), name: pa.GetName(), signedIn: pa.GetSignedIn(), reads: make(map[string]*readMark)}
		for _, pr := range pa.GetReads() {
			acct.reads[pr.GetConv()] = &readMark{name: pr.GetName(), num: pr.GetNumber(), unread: pr.GetUnread(), recent: pr.GetRecent(),
				mentions: pr.GetMentions(), mentioned: pr.GetMentioned()}
		}
		for _, i := range pa.GetInbox() {
			ev, err := event(i)
			if err != nil {
				return err
			}
			if ev == nil {
				return fmt.Errorf("cluster: the snapshot's inbox of %q has no event", acct.key)
			}
			acct.inbox = append(acct.inbox, ev)
			acct.inboxBytes += ev.bytes()
		}
		h.accounts[acct.key] = acct
	}
	for _, pm := range snap.GetMembers() {
		// A user's sessions come one after another; a snapshot of a chatd
		// before devices has one each.
		per := h.byKey[pm.GetKey()]
		if per == nil {
			per = &person{
				key:        pm.GetKey(),
				skels:      lookalikeKeys(pm.GetUser().GetUsername(), pm.GetKey()),
				user:       pm.GetUser(),
				deviceHash: string(pm.GetDeviceHash()),
			}
			if per.user == nil {
				per.user = &chatv1.User{}
			}
			// A snapshot of a chatd before accounts has none: made here.
			per.acct = h.accountLocked(per.key, per.user.GetUsername())
			for _, key := range pm.GetChannels() {
				ch := h.channels[key]
				if ch == nil {
					return fmt.Errorf("cluster: the snapshot puts %q in a channel it does not have", per.key)
				}
				per.channels = append(per.channels, ch)
			}
			h.byKey[per.key] = per
			h.addLookalikesLocked(per)
		}
		sess := &session{
			person:    per,
			tokenHash: string(pm.GetTokenHash()),
			state:     sessionState(pm.GetState()),
			node:      pm.GetNode(),
			attach:    pm.GetAttach(),
			seq:       pm.GetSeq(),
			gen:       pm.GetParkCount(),
			addr:      pm.GetClientAddr(),
		}
		if pm.GetSince() != nil {
			sess.since = pm.GetSince().AsTime()
		}
		per.devices = append(per.devices, sess)
		for _, i := range pm.GetLog() {
			ev, err := event(i)
			if err != nil {
				return err
			}
			sess.replay.push(ev, h.cfg.ResumeBuffer, h.cfg.ResumeBufferBytes)
		}
		switch sess.state {
		case stateOnline:
		case stateHeld:
			h.held++
		case stateParked:
			h.parked[sess] = struct{}{}
		default:
			return fmt.Errorf("cluster: the snapshot has %q in an unknown state %d", per.key, sess.state)
		}
		if sess.online() {
			// Users come in the online list's order: per goes on it with
			// its first device online.
			h.listLocked(per)
		}
		if sess.state != stateOnline {
			sess.deadline = pm.GetDeadline().AsTime()
			h.deadline = append(h.deadline, expiry{sess: sess, gen: sess.gen, at: sess.deadline})
		}
		h.byToken[sess.tokenHash] = sess
	}
	slices.SortStableFunc(h.deadline, func(a, b expiry) int { return a.at.Compare(b.at) })
	for _, pc := range snap.GetChannels() {
		ch := h.channels[pc.GetKey()]
		for _, key := range pc.GetMembers() {
			per := h.byKey[key]
			if per == nil {
				return fmt.Errorf("cluster: the snapshot's #%s has a member it does not have", ch.name)
			}
			// listLocked counted it in ch.online. A snapshot of a chatd
			// before read marks has none: everything before it is read.
			ch.members = append(ch.members, member{per: per, mark: per.acct.mark(ch.conv, ch.name, h.msgs)})
		}
	}
	for _, pn := range snap.GetNodes() {
		h.nodes[pn.GetId()] = &nodeInfo{name: pn.GetName(), lastHeard: pn.GetLastHeard().AsTime()}
	}
	h.users, h.channelList = nil, nil
	return nil
}

// settings are the limits every node of a cluster must share.
func (h *hub) settings() *clusterv1.Settings {
	return settingsOf(h.cfg, h.nodeTimeout)
}

func settingsOf(cfg Config, nodeTimeout time.Duration) *clusterv1.Settings {
	return &clusterv1.Settings{
		MaxSessions:        uint32(cfg.MaxSessions),
		MaxChannels:        uint32(cfg.MaxChannels),
		MaxChannelsPerUser: uint32(cfg.MaxChannelsPerUser),
		MaxDevicesPerUser:  uint32(cfg.MaxDevicesPerUser),
		OfflineInbox:       uint32(cfg.OfflineInbox),
		OfflineInboxBytes:  uint32(cfg.OfflineInboxBytes),
		HistorySize:        uint32(cfg.HistorySize),
		HistoryBytes:       uint32(cfg.HistoryBytes),
		ResumeBuffer:       uint32(cfg.ResumeBuffer),
		ResumeBufferBytes:  uint32(cfg.ResumeBufferBytes),
		ResumeGraceMs:      uint64(cfg.ResumeGrace / time.Millisecond),
		NodeTimeoutMs:      uint64(nodeTimeout / time.Millisecond),
	}
}

// ClusterSettings describes the settings that every node of a cluster must
// share, as their flags name them: the log records the first node's, and
// refuses nodes with others.
func ClusterSettings(cfg Config, ccfg ClusterConfig) string {
	return describeSettings(settingsOf(cfg, ccfg.NodeTimeout))
}

func sameSettings(a, b *clusterv1.Settings) bool {
	return describeSettings(a) == describeSettings(b)
}

// describeSettings names the settings as their flags do.
func describeSettings(s *clusterv1.Settings) string {
	return fmt.Sprintf("--max-sessions %d --max-channels %d --max-channels-per-user %d --max-devices-per-user %d --offline-inbox %d --offline-inbox-bytes %d --history-size %d --history-bytes %d --resume-buffer %d --resume-buffer-bytes %d --resume-grace %s --node-timeout %s",
		s.GetMaxSessions(), s.GetMaxChannels(), s.GetMaxChannelsPerUser(), s.GetMaxDevicesPerUser(), s.GetOfflineInbox(), s.GetOfflineInboxBytes(), s.GetHistorySize(), s.GetHistoryBytes(),
		s.GetResumeBuffer(), s.GetResumeBufferBytes(),
		time.Duration(s.GetResumeGraceMs())*time.Millisecond, time.Duration(s.GetNodeTimeoutMs())*time.Millisecond)
}
