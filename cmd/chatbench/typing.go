package main

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// This file is typing (--typers): members that type in their channel and
// never send, which is what issue 19's target prices ("typing traffic at
// one refresh per 2 s from 10 % of a 1,000-member channel costs less
// server CPU than the messages of that channel at 1 message/s").
//
// A person types for a few seconds, then sends or gives up. Typers do not
// send, so each types in bursts: a typing request every --typing-every
// (the refresh chatd asks for; it drops closer ones) for --typing-for,
// then a stopped request, then a rest of --typing-pause, and again; with
// no pause, one burst for the whole phase. The defaults, 6 s of typing
// and 4 s of rest, make every start, refresh and stop happen: about 60 %
// of the typers type at any moment, each sending 3 typing requests and a
// stop every 10 s. Each typer starts at a random point of its cycle, as
// people do, so that the requests are spread over time and the load is
// the same from the first second. A typer that is typing when the phase
// ends stops, so that afterwards every session must be shown nobody
// typing (see member.typingShown).
//
// Typing events are unnumbered (seq 0): a session counts them apart and
// they take no part in its seq, loss or order checks.

// typer is the typing side of a member that types.
type typer struct {
	sent     atomic.Uint64 // typing requests, stops included
	stops    atomic.Uint64 // of them, stopped
	rejected atomic.Uint64 // refused by the server (counted by the receive goroutine)
	err      error         // why it could not type; set by its goroutine before it ends
}

// onTyping counts a typing event received by m and notes whether it shows
// anyone typing. A typer's sessions are in the channel too, so they get
// the events that name them.
func (m *member) onTyping(ts *chatv1.TypingState) {
	m.typingEvents.Add(1)
	m.typingShown.Store(len(ts.GetUsers()) > 0 || ts.GetSeveral())
}

// typeAway has m type in its channel from start until deadline (see the
// head of this file), and returns why it could not, if it could not. The
// next refresh is due --typing-every after the last one went, not on a
// fixed grid: chatd drops a refresh that comes less than 2 s after the
// last it took, and a timer that fires late must not bring the next one
// closer.
func typeAway(ctx context.Context, m *member, cfg *config, start, deadline int64) error {
	every := int64(cfg.typingEvery)
	var at, end int64 // the next typing request, and the end of the burst it is in
	if cfg.typingPause == 0 {
		at, end = start+rand.Int64N(every), deadline
	} else {
		cycle := int64(cfg.typingFor + cfg.typingPause)
		pos := rand.Int64N(cycle) // where in its cycle the typer is at the start
		if pos < int64(cfg.typingFor) {
			// Typing already: its next refresh is due within one
			// interval, and its burst ends as it would have.
			at, end = start+rand.Int64N(every), start+int64(cfg.typingFor)-pos
		} else {
			at = start + cycle - pos
			end = at + int64(cfg.typingFor)
		}
	}
	typing := false // chatd has been told so, and not told it stopped
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	wait := func(until int64) bool {
		if d := until - now(); d > 0 {
			timer.Reset(time.Duration(d))
			select {
			case <-timer.C:
			case <-m.done:
				return false
			case <-ctx.Done():
				return false
			}
		}
		return true
	}
	for {
		if at < end && at < deadline {
			if !wait(at) {
				return nil // the session or the run ended: that says why
			}
			if err := m.sendTyping(false); err != nil {
				return sendEnd(ctx, err)
			}
			typing, at = true, now()+every
			continue
		}
		stop := min(end, deadline)
		if typing {
			if !wait(stop) {
				return nil
			}
			if err := m.sendTyping(true); err != nil {
				return sendEnd(ctx, err)
			}
			typing = false
		}
		if stop == deadline {
			return nil
		}
		at = end + int64(cfg.typingPause)
		end = at + int64(cfg.typingFor)
	}
}

// sendTyping sends a typing request, or a stopped one, in m's channel.
// Only m's typer goroutine calls it: typers never send messages, and
// --typers goes without --restart-node, so m's stream does not change.
func (m *member) sendTyping(stopped bool) error {
	if err := m.client.typing(m.chanName, stopped); err != nil {
		return err
	}
	m.typ.sent.Add(1)
	if stopped {
		m.typ.stops.Add(1)
	}
	return nil
}

// typingRequest is a typing request in channel ("": general), or a
// stopped one.
func typingRequest(channel string, stopped bool) *chatv1.ChatRequest {
	return &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Typing{Typing: &chatv1.Typing{Channel: channel, Stopped: stopped}}}
}
