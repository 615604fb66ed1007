package server_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	clusterv1 "github.com/chatd/chatd/gen/chatd/cluster/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The promise at the head of apply.go, checked directly: applying the same
// commands in the same order gives the same state, byte for byte, whether
// from the start or from a snapshot taken midway. That is what lets every
// node of a cluster, and a chatd restarted on its data directory, agree.
// Random logs of joins (a user's first device or another), resumes, messages (to channels and privately),
// channels entered and left, read marks, typing, kicks, bans and admins' notices, disconnects, logouts, heartbeats, nodes
// stopping and time passing (deadlines falling due, nodes given up) go to
// two machines, and to a third restored from the first's snapshot halfway.
func TestSameLogSameState(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.ResumeGrace = 3 * time.Second
	cfg.MaxChannels, cfg.HistorySize, cfg.ResumeBuffer = 6, 5, 8 // limits reached, evictions made
	var multi int                                                // entries after which a user had several devices
	t.Cleanup(func() {
		if multi == 0 {
			t.Errorf("no log had a user on several devices: the logs test too little")
		}
	})
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			entries := randomLog(seed, 400, cfg)
			a, b := server.NewMachine(cfg), server.NewMachine(cfg)
			var c *server.Machine
			half := len(entries) / 2
			for i, e := range entries {
				for _, m := range []*server.Machine{a, b, c} {
					if m != nil {
						if err := m.Apply(e); err != nil {
							t.Fatalf("entry %d: %v", e.Seq, err)
						}
					}
				}
				for _, u := range []string{"alice", "bob", "carol", "dave"} {
					if a.Devices(u) > 1 {
						multi++
						break
					}
				}
				if i == half {
					var err error
					if c, err = server.RestoreMachine(cfg, a.Snapshot()); err != nil {
						t.Fatalf("restoring the snapshot taken at entry %d: %v", e.Seq, err)
					}
				}
			}
			sa, sb, sc := a.Snapshot(), b.Snapshot(), c.Snapshot()
			if !bytes.Equal(sa, sb) {
				t.Fatalf("two machines fed the same log end in different states (%d and %d bytes)", len(sa), len(sb))
			}
			if !bytes.Equal(sa, sc) {
				t.Fatalf("a machine restored from a snapshot halfway ends in another state than the one that applied it all (%d and %d bytes)", len(sc), len(sa))
			}
		})
	}
}

// randomLog makes n entries of a log with a few users on two nodes. It
// asks a machine of its own which streams are attached, so that most
// commands name a live stream (and some a stale one, as happens when a
// stream ends while its command is in the log).
func randomLog(seed uint64, n int, cfg server.Config) []server.Entry {
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	users := []string{"alice", "bob", "carol", "dave", "aIice", "B0B"}
	channels := []string{"general", "design", "ops", "random", "x1", "x2", "x3", "x4"}
	nodes := []string{"node-a", "node-b"}
	track := server.NewMachine(cfg)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var ids, tokens int
	var entries []server.Entry
	tokenOf := map[string]string{}
	for seq := uint64(1); len(entries) < n; seq++ {
		// Mostly close together, now and then a pause past a deadline
		// or a node timeout.
		switch rng.IntN(20) {
		case 0:
			now = now.Add(time.Duration(2+rng.IntN(15)) * time.Second)
		default:
			now = now.Add(time.Duration(rng.IntN(300)) * time.Millisecond)
		}
		node := nodes[rng.IntN(len(nodes))]
		user := users[rng.IntN(len(users))]
		key := lower(user)
		ref := func() *clusterv1.Stream {
			if n, attach, ok := track.Attached(key); ok && rng.IntN(10) > 0 {
				node = n
				return &clusterv1.Stream{UserKey: key, Attach: attach}
			}
			return &clusterv1.Stream{UserKey: key, Attach: uint64(rng.IntN(5))}
		}
		cmd := &clusterv1.Command{}
		switch k := rng.IntN(18); {
		case k < 3:
			tokens++
			tok := fmt.Sprint("token-", tokens)
			j := &clusterv1.Join{Username: user, TokenHash: []byte(tok), LastSeq: uint64(rng.IntN(20)), NewDeviceHash: []byte("device-" + key)}
			// Some joins are another device of a user in the chat: by
			// its device key, or signed in.
			switch rng.IntN(4) {
			case 0:
				j.DeviceHash = j.NewDeviceHash
			case 1:
				j.SignedIn = true
			}
			if old, ok := tokenOf[key]; ok && rng.IntN(2) == 0 {
				j.ResumeHash = []byte(old)
			}
			tokenOf[key] = tok
			cmd.Action = &clusterv1.Command_Join{Join: j}
		case k < 7:
			s := &clusterv1.Send{Stream: ref(), Text: fmt.Sprint("hello ", rng.IntN(1000)), ClientId: fmt.Sprint("c", rng.IntN(9))}
			switch rng.IntN(3) {
			case 0:
				s.Channel = channels[rng.IntN(len(channels))]
			case 1:
				s.Recipient = users[rng.IntN(len(users))]
			}
			cmd.Action = &clusterv1.Command_Send{Send: s}
		case k < 9:
			cmd.Action = &clusterv1.Command_JoinChannel{JoinChannel: &clusterv1.JoinChannel{Stream: ref(), Channel: channels[rng.IntN(len(channels))]}}
		case k < 10:
			cmd.Action = &clusterv1.Command_LeaveChannel{LeaveChannel: &clusterv1.LeaveChannel{Stream: ref(), Channel: channels[rng.IntN(len(channels))]}}
		case k < 12:
			reason := []chatv1.LeaveReason{chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED, chatv1.LeaveReason_LEAVE_REASON_LOGOUT, chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW}[rng.IntN(3)]
			cmd.Action = &clusterv1.Command_Leave{Leave: &clusterv1.Leave{Stream: ref(), Reason: reason}}
		case k < 13:
			cmd.Action = &clusterv1.Command_Heartbeat{Heartbeat: &clusterv1.Heartbeat{Name: node}}
		case k == 16:
			switch rng.IntN(4) {
			case 3:
				p := &clusterv1.Publish{Text: "notice", Bot: []string{"", "weather"}[rng.IntN(2)]}
				if rng.IntN(2) == 0 {
					p.Recipient = users[rng.IntN(len(users))]
				} else {
					p.Channel = channels[rng.IntN(len(channels))]
				}
				cmd.Action = &clusterv1.Command_Publish{Publish: p}
			case 0:
				cmd.Action = &clusterv1.Command_Kick{Kick: &clusterv1.Kick{User: user, Reason: "r"}}
			case 1:
				cmd.Action = &clusterv1.Command_Ban{Ban: &clusterv1.Ban{User: user, DurationMs: uint64(rng.IntN(20_000))}}
			default:
				cmd.Action = &clusterv1.Command_Unban{Unban: &clusterv1.Unban{User: user}}
			}
		case k == 14:
			ty := &clusterv1.Typing{Stream: ref(), Stopped: rng.IntN(4) == 0}
			if rng.IntN(2) == 0 {
				ty.Channel = channels[rng.IntN(len(channels))]
			} else {
				ty.Recipient = users[rng.IntN(len(users))]
			}
			cmd.Action = &clusterv1.Command_Typing{Typing: ty}
		case k == 15:
			mr := &clusterv1.MarkRead{Stream: ref(), Number: uint64(rng.IntN(60))}
			if rng.IntN(2) == 0 {
				mr.Channel = channels[rng.IntN(len(channels))]
			} else {
				mr.With = users[rng.IntN(len(users))]
			}
			cmd.Action = &clusterv1.Command_MarkRead{MarkRead: mr}
		default:
			if rng.IntN(4) == 0 {
				cmd.Action = &clusterv1.Command_NodeStop{NodeStop: &clusterv1.NodeStop{}}
			} else {
				cmd.Action = &clusterv1.Command_Heartbeat{Heartbeat: &clusterv1.Heartbeat{Name: node}}
			}
		}
		ids++
		cmd.Node, cmd.Id = node, fmt.Sprint(node, "-", ids)
		cmd.NotAfter = timestamppb.New(now.Add(time.Duration(rng.IntN(2000)-200) * time.Millisecond)) // some come too late
		data, err := proto.Marshal(cmd)
		if err != nil {
			panic(err)
		}
		e := server.Entry{Seq: seq, Time: now, Data: data}
		if err := track.Apply(e); err != nil {
			panic(err)
		}
		entries = append(entries, e)
	}
	return entries
}

func lower(name string) string {
	_, key, err := server.CheckUsername(name)
	if err != nil {
		panic(err)
	}
	return key
}
