package chatclient_test

import (
	"testing"
	"time"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chatd/chatd/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// read matches a read event of the conversation channel (or with).
func read(channel, with string) func(*chatv1.ChatResponse) bool {
	return func(ev *chatv1.ChatResponse) bool {
		r := ev.GetRead()
		return r != nil && r.GetChannel() == channel && r.GetWith() == with
	}
}

// A user's first device is given a device key; with it another device
// joins as the same user, and without it (or with a wrong one) the name is
// refused as taken.
func TestDeviceKeyJoinsAsAnotherDevice(t *testing.T) {
	t.Parallel()
	addr := start(t, server.DefaultConfig())
	cfg := chatclient.Config{Servers: []string{addr}}
	laptop := connect(t, cfg, "alice")
	key := laptop.DeviceKey()
	if key == "" || key != laptop.Welcome().GetDeviceKey() {
		t.Fatalf("DeviceKey() = %q, want the welcome's, %q, and not empty", key, laptop.Welcome().GetDeviceKey())
	}
	for _, wrong := range []string{"", "not-the-key"} {
		c := cfg
		c.DeviceKey = wrong
		if _, err := chatclient.Connect(t.Context(), c, "alice"); status.Code(err) != codes.AlreadyExists {
			t.Errorf("Connect as alice with device key %q = %v, want AlreadyExists", wrong, err)
		}
	}

	cfg.DeviceKey = key
	phone := connect(t, cfg, "alice")
	if got := phone.DeviceKey(); got != key {
		t.Errorf("the phone's DeviceKey() = %q, want the laptop's, %q", got, key)
	}
	if online := phone.Welcome().GetOnlineUsers(); len(online) != 1 || online[0].GetUsername() != "alice" {
		t.Errorf("the phone's welcome lists %v online, want alice once", online)
	}
	bob := connect(t, chatclient.Config{Servers: []string{addr}}, "bob")
	if err := bob.SendText("", "hi alice", "b1"); err != nil {
		t.Fatal(err)
	}
	until(t, laptop, message("hi alice"), nil)
	until(t, phone, message("hi alice"), nil)
}

// MarkRead marks a channel or a private conversation read on every device
// of the user; a mark the server refuses comes back with its client_id.
func TestMarkReadReachesEveryDevice(t *testing.T) {
	t.Parallel()
	addr := start(t, server.DefaultConfig())
	laptop := connect(t, chatclient.Config{Servers: []string{addr}}, "alice")
	phone := connect(t, chatclient.Config{Servers: []string{addr}, DeviceKey: laptop.DeviceKey()}, "alice")
	bob := connect(t, chatclient.Config{Servers: []string{addr}}, "bob")

	if err := bob.SendText("general", "one", ""); err != nil {
		t.Fatal(err)
	}
	if err := bob.SendText("general", "two", ""); err != nil {
		t.Fatal(err)
	}
	if err := bob.Send(&chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Recipient: "alice", Text: "psst"}}}); err != nil {
		t.Fatal(err)
	}
	one := until(t, laptop, message("one"), nil).GetMessage().GetId()
	until(t, laptop, message("two"), nil)
	psst := until(t, laptop, message("psst"), nil).GetMessage().GetId()

	if err := laptop.MarkRead("#general", "", one, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := laptop.MarkRead("", "bob", psst, "r2"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		c    *chatclient.Client
	}{{"laptop", laptop}, {"phone", phone}} {
		r := until(t, c.c, read("general", ""), nil).GetRead()
		if r.GetLastReadId() != one || r.GetUnread() != 1 {
			t.Errorf("%s: #general read %v, want read up to %s with 1 unread (two)", c.name, r, one)
		}
		r = until(t, c.c, read("", "bob"), nil).GetRead()
		if r.GetLastReadId() != psst || r.GetUnread() != 0 {
			t.Errorf("%s: read with bob %v, want read up to %s with none unread", c.name, r, psst)
		}
	}

	if err := phone.MarkRead("nowhere", "", one, "r3"); err != nil {
		t.Fatal(err)
	}
	rej := until(t, phone, func(ev *chatv1.ChatResponse) bool { return ev.GetRejected() != nil }, nil).GetRejected()
	if rej.GetClientId() != "r3" || codes.Code(rej.GetCode()) != codes.FailedPrecondition {
		t.Errorf("a mark in a channel alice is not in: rejected %v, want FAILED_PRECONDITION for r3", rej)
	}
}

// A device away longer than chatd keeps its session comes back as a new
// session of its user, who is still on another device: its resume carries
// the device key, without which the name would be refused as taken.
func TestReconnectAfterTheGraceJoinsAsADeviceAgain(t *testing.T) {
	t.Parallel()
	cfg := server.DefaultConfig()
	cfg.ResumeGrace = 200 * time.Millisecond
	addr := start(t, cfg)
	laptop := connect(t, chatclient.Config{Servers: []string{addr}}, "alice")
	proxy := breakable(t, addr)
	phone := connect(t, chatclient.Config{Servers: []string{proxy.Addr()}, DeviceKey: laptop.DeviceKey(), ReconnectTimeout: 20 * time.Second}, "alice")

	proxy.Refuse(true)
	proxy.CloseConns()
	time.Sleep(5 * cfg.ResumeGrace) // the phone's session expires; the laptop holds the name
	proxy.Refuse(false)

	w := until(t, phone, func(ev *chatv1.ChatResponse) bool { return ev.GetWelcome() != nil }, nil).GetWelcome()
	if w.GetRecovery() != chatv1.Recovery_RECOVERY_INCOMPLETE || w.GetYou().GetUsername() != "alice" {
		t.Fatalf("the phone came back with %v, want alice afresh (RECOVERY_INCOMPLETE)", w)
	}
	if err := phone.SendText("", "back", "p1"); err != nil {
		t.Fatal(err)
	}
	until(t, laptop, message("back"), nil)
}
