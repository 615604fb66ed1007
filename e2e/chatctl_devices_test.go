package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// events reads c's events into a channel until the test ends, so that a
// test can wait for one with a deadline.
func events(t *testing.T, c *chatclient.Client) <-chan *chatv1.ChatResponse {
	t.Helper()
	ch := make(chan *chatv1.ChatResponse)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			ev, err := c.Recv()
			if err != nil {
				return
			}
			select {
			case ch <- ev:
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		c.Close() // ends a Recv under way
		<-ended
	})
	return ch
}

// nextEvent waits for the first event of ch that match accepts.
func nextEvent(t *testing.T, ch <-chan *chatv1.ChatResponse, what string, match func(*chatv1.ChatResponse) bool) *chatv1.ChatResponse {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case ev := <-ch:
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within %s", what, waitTimeout)
		}
	}
}

// expectResponse waits for a line of chatctl -o json that is a response
// match accepts, and returns it. (protojson's spacing varies from build to
// build: its lines are decoded, not matched as text.)
func expectResponse(t *testing.T, p *proc, what string, match func(*chatv1.ChatResponse) bool) *chatv1.ChatResponse {
	t.Helper()
	for {
		line := p.expect(t, `^\{`)
		ev := &chatv1.ChatResponse{}
		if err := protojson.Unmarshal([]byte(line), ev); err != nil {
			t.Fatalf("%s printed %q, not a response: %v", p.name, line, err)
		}
		if match(ev) {
			return ev
		}
	}
}

// One user, several devices: two chatctl processes joined as alice, the
// second with the first's device key from CHATD_DEVICE_KEY, both see what
// bob sends, and bob sees alice once. /channels counts what alice has not
// read, until a chatctl that prints it joins: it says what is unread, shows
// it and marks it read, and alice's other devices see her counts drop.
func TestChatctlDevicesShareTheUserAndItsReadState(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	// The first device in a pipe: its key is in the welcome of -o json,
	// not in text (a secret is no line for a log). Neither of the first
	// two reads anything: --mark-read=false.
	laptop := chatctl(t, "join", "--name", "alice", "--server", srv.addr, "-o", "json", "--mark-read=false")
	w := expectResponse(t, laptop, "the welcome", func(ev *chatv1.ChatResponse) bool { return ev.GetWelcome() != nil })
	key := w.GetWelcome().GetDeviceKey()
	if key == "" {
		t.Fatalf("the first device's welcome has no device key: %v", w)
	}
	withKey := []string{"CHATD_DEVICE_KEY=" + key}
	phone := startEnv(t, withKey, chatctlBin, "join", "--name", "alice", "--server", srv.addr, "--mark-read=false")
	phone.expect(t, clock+`\* you joined as alice$`)
	phone.expect(t, clock+`Online \(1\): alice \(you\)$`)
	phone.expect(t, clock+`\* you joined #general \(1 member\), your current channel$`)

	// A program of alice's, watching her read state as the chat page does.
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	page, err := chatclient.Connect(ctx, chatclient.Config{Servers: []string{srv.addr}, DeviceKey: key}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	seen := events(t, page)

	bob := chatctl(t, "join", "--name", "bob", "--server", srv.addr)
	bob.expect(t, clock+`Online \(2\): alice, bob \(you\)$`)
	bob.expect(t, clock+`\* you joined #general \(2 members\), your current channel$`)
	phone.expect(t, clock+`\* bob joined$`)
	bob.send(t, "one", "two", "/msg alice psst")
	phone.expect(t, clock+`#general bob: one$`)
	phone.expect(t, clock+`#general bob: two$`)
	phone.expect(t, clock+`\[private\] bob -> alice: psst$`)
	expectResponse(t, laptop, "bob's psst", func(ev *chatv1.ChatResponse) bool { return ev.GetMessage().GetText() == "psst" })
	two := nextEvent(t, seen, "bob's two", func(ev *chatv1.ChatResponse) bool { return ev.GetMessage().GetText() == "two" }).GetMessage().GetId()
	psst := nextEvent(t, seen, "bob's psst", func(ev *chatv1.ChatResponse) bool { return ev.GetMessage().GetText() == "psst" }).GetMessage().GetId()

	phone.send(t, "/channels")
	phone.expect(t, clock+`Channels \(1\):$`)
	phone.expect(t, `^  #general  2 members  2 unread  \(current\)$`)

	// A device that reads: told what is unread, shown it, it marks it read.
	desk := startEnv(t, withKey, chatctlBin, "join", "--name", "alice", "--server", srv.addr)
	desk.expect(t, clock+`\* you joined as alice$`)
	desk.expect(t, `^Unread private messages: 1 from bob \(/history NAME shows them\)\.$`)
	desk.expect(t, clock+`\* you joined #general \(2 members\), your current channel, 2 unread$`)
	desk.expect(t, `^-- history of #general \(2 messages\) --$`)
	desk.expect(t, clock+`\[history\] #general bob: two$`)
	desk.expect(t, `^-- end of history --$`)
	read := nextEvent(t, seen, "a read event of #general", func(ev *chatv1.ChatResponse) bool { return ev.GetRead().GetChannel() == "general" }).GetRead()
	if read.GetLastReadId() != two || read.GetUnread() != 0 {
		t.Errorf("alice's other device got #general read %v, want read up to %s (two), nothing unread", read, two)
	}
	expectResponse(t, laptop, "the read event of #general", func(ev *chatv1.ChatResponse) bool {
		return ev.GetRead().GetChannel() == "general" && ev.GetRead().GetLastReadId() == two
	})

	desk.send(t, "/history bob")
	desk.expect(t, clock+`\[history\] \[private\] bob -> alice: psst$`)
	read = nextEvent(t, seen, "a read event with bob", func(ev *chatv1.ChatResponse) bool { return ev.GetRead().GetWith() == "bob" }).GetRead()
	if read.GetLastReadId() != psst || read.GetUnread() != 0 {
		t.Errorf("alice's other device got the read state with bob %v, want read up to %s (psst), nothing unread", read, psst)
	}

	phone.send(t, "/channels")
	phone.expect(t, clock+`Channels \(1\):$`)
	phone.expect(t, `^  #general  2 members  \(current\)$`)

	// Three of alice's devices log out; she is still on the fourth, and
	// bob heard of none of them come or go.
	endInput(t, phone, desk, laptop)
	if err := page.SendText("general", "still here", "s1"); err != nil {
		t.Fatal(err)
	}
	bob.expect(t, clock+`#general alice: still here$`)
	endInput(t, bob)
	for _, p := range []*proc{phone, desk} {
		if out := p.stdout.String(); strings.Contains(out, key) || strings.Contains(out, "another device") {
			t.Errorf("%s printed the device key, or how to use it, in a pipe:\n%s", p.name, out)
		}
	}
	if out := bob.stdout.String(); matches(`(?m)\* alice (joined|left)`, out) {
		t.Errorf("bob saw alice come or go with a device:\n%s", out)
	}
}

// A wrong device key is refused as the name taken, and chatctl says the
// key was not the user's.
func TestChatctlWrongDeviceKey(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	alice.expect(t, clock+`\* you joined as alice$`)
	p := startEnv(t, []string{"CHATD_DEVICE_KEY=not-the-key"}, chatctlBin, "send", "--name", "alice", "--server", srv.addr, "hi")
	p.stdin.Close()
	if code := p.wait(t); code != exitNameTaken {
		t.Errorf("exit code %d, want %d", code, exitNameTaken)
	}
	if s := p.stderr.String(); !strings.Contains(s, `username "alice" is taken`) || !strings.Contains(s, "the device key from $CHATD_DEVICE_KEY is not this user's") {
		t.Errorf("stderr %q does not say the key was not alice's", s)
	}
	endInput(t, alice)
}
