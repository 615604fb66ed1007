package server

import (
	"crypto/subtle"
	"slices"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// person is a user as the hub keeps it: the name, the channels and the
// place on the online list that all of its devices share. Each device is
// a session of its own (its seq, resume token, replay and stream); the
// user is online while one of them is online or held, and forgotten with
// the last of them. Others hear of the user, not of its devices: a
// user_joined when it comes online, a user_left when it goes.
//
// Every field is owned by the hub: read and written only with hub.mu held.
type person struct {
	key        string       // case-mapped username; unique among persons
	skels      [2]string    // lookalikeKeys of the name; no two persons share one
	user       *chatv1.User // replaced, not modified, when the user comes back online
	deviceHash string       // SHA-256 of the device key: proves a join is another of its devices
	acct       *account     // its read marks and inbox

	devices  []*session // its sessions, in the order they joined
	channels []*channel // the channels it is in, in the order it entered them

	listed     bool    // on the online list
	prev, next *person // neighbours on the online list, while listed
}

// online reports whether others see the user online: one of its devices
// is online, or held while its client reconnects.
func (p *person) online() bool {
	for _, d := range p.devices {
		if d.online() {
			return true
		}
	}
	return false
}

// in reports whether the user is in ch.
func (p *person) in(ch *channel) bool {
	for _, c := range p.channels {
		if c == ch {
			return true
		}
	}
	return false
}

// provenBy reports whether deviceHash, the hash of a device key a join
// presented, is p's.
func (p *person) provenBy(deviceHash []byte) bool {
	return len(deviceHash) > 0 && p.deviceHash != "" &&
		subtle.ConstantTimeCompare(deviceHash, []byte(p.deviceHash)) == 1
}

// device returns p's session on node with attachment attach, if it is
// online.
func (p *person) device(node string, attach uint64) *session {
	for _, d := range p.devices {
		if d.state == stateOnline && d.node == node && d.attach == attach {
			return d
		}
	}
	return nil
}

// removeDevice takes sess out of p's devices.
func (p *person) removeDevice(sess *session) {
	for i, d := range p.devices {
		if d == sess {
			p.devices = slices.Delete(p.devices, i, i+1) // clears the freed slot
			return
		}
	}
}
