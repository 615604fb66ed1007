package e2e_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chromedp/chromedp"
)

// One user on several devices, in the page: each device a browser of its
// own (its own storage, as a phone beside a laptop), against the real
// chatd.

// addDeviceLink opens the page's "Add a device", and returns the link it
// shows, closing the dialog again.
func (tb *tab) addDeviceLink(t *testing.T) string {
	t.Helper()
	tb.run(t, chromedp.Click("#add-device", chromedp.ByQuery), chromedp.WaitVisible("#device-link", chromedp.ByQuery))
	var link string
	tb.eval(t, `document.getElementById("device-link").value`, &link)
	tb.run(t, chromedp.Click("#device-close", chromedp.ByQuery))
	return link
}

// href returns the address the tab shows.
func (tb *tab) href(t *testing.T) string {
	t.Helper()
	var s string
	tb.eval(t, `location.href`, &s)
	return s
}

// countMarks has the page count, from now on, the requests it sends that
// mark a conversation read: those with the client_id "read" (protobuf's
// field 1, length 4, first in the request), as mark_read goes. Call it
// before the page connects.
func (tb *tab) countMarks(t *testing.T) {
	t.Helper()
	tb.run(t, chromedp.Evaluate(`(() => {
		const Real = WebSocket, mark = [0x0a, 0x04, 0x72, 0x65, 0x61, 0x64];
		window.chatdTestMarks = 0;
		window.WebSocket = class extends Real {
			send(data) {
				if (ArrayBuffer.isView(data)) {
					const b = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
					for (let i = 0; i + mark.length <= b.length; i++) {
						if (mark.every((x, j) => b[i + j] === x)) {
							window.chatdTestMarks++;
							break;
						}
					}
				}
				super.send(data);
			}
		};
	})()`, nil))
}

// marks returns how many requests marking a conversation read the page
// has sent since countMarks.
func (tb *tab) marks(t *testing.T) int {
	t.Helper()
	var n int
	tb.eval(t, `window.chatdTestMarks`, &n)
	return n
}

func TestBrowserTwoDevicesOneUser(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	laptop := openTab(t, newBrowser(t), "alice's laptop", srv.url)
	laptop.countMarks(t)
	laptop.login(t, "alice")
	laptop.waitUsers(t, "alice you")
	laptop.joinChannel(t, "ops")
	bob := &member{name: "bob"}
	bob.connect(t, srv.addr)
	bob.request(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: "ops"}}})
	laptop.waitLine(t, "#messages li.notice", "bob joined #ops")
	laptop.openConv(t, "#general")

	// The link carries the name and the key in its fragment, which
	// browsers send to no server.
	link := laptop.addDeviceLink(t)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("the page's link for another device %q: %v", link, err)
	}
	frag, err := url.ParseQuery(u.Fragment)
	if err != nil || u.RawQuery != "" || frag.Get("name") != "alice" || frag.Get("device") == "" || "http://"+u.Host+u.Path != srv.url+"/" {
		t.Fatalf("the page's link for another device is %q; want %s/#device=KEY&name=alice", link, srv.url)
	}

	// Opened in another browser, it is alice there too: one alice for
	// everyone, and the key is taken off the address bar.
	phone := openPage(t, newBrowser(t), "alice's phone", link)
	phone.waitVisible(t, "chat-view", true)
	phone.waitLine(t, "#me", "alice")
	phone.waitUsers(t, "alice you", "bob")
	phone.waitConvs(t, "#general", "#ops")
	laptop.waitUsers(t, "alice you", "bob")
	if got := phone.href(t); got != srv.url+"/" {
		t.Errorf("after joining from the link the address bar shows %q; want %s/ (no key)", got, srv.url)
	}

	// Unread counts are the server's, the same on both devices...
	for _, text := range []string{"deploy at 3", "any objections?", "going ahead"} {
		bob.sendTo(t, "#ops", text)
	}
	bob.sendTo(t, "@alice", "ping")
	laptop.waitUnread(t, "#ops", 3)
	phone.waitUnread(t, "#ops", 3)
	laptop.waitUnread(t, "@bob", 1)
	phone.waitUnread(t, "@bob", 1)

	// ...and reading on one clears them on the other.
	laptop.openConv(t, "#ops")
	laptop.waitLine(t, "#messages li.message", "bobgoing ahead")
	laptop.waitUnread(t, "#ops", 0)
	phone.waitUnread(t, "#ops", 0)
	if n := laptop.marks(t); n != 1 {
		t.Errorf("the laptop sent %d requests to mark read, opening #ops with 3 unread; want 1", n)
	}

	// What comes while alice looks at #ops is read as it comes: a mark for
	// a burst, not one per message (spaced, so that they arrive apart).
	for i := 1; i <= 5; i++ {
		bob.sendTo(t, "#ops", fmt.Sprintf("burst %d", i))
		time.Sleep(40 * time.Millisecond)
	}
	laptop.waitLine(t, "#messages li.message", "bobburst 5")
	deadline := time.Now().Add(waitTimeout)
	for laptop.marks(t) == 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling interval, not an assertion
	}
	time.Sleep(500 * time.Millisecond) // room for more marks, were the page to send them
	if n := laptop.marks(t) - 1; n < 1 || n > 2 {
		t.Errorf("the laptop sent %d requests to mark read for a burst of 5 messages in the conversation shown; want 1 (2 if split by chance)", n)
	}
	laptop.waitUnread(t, "#ops", 0)
	phone.openConv(t, "@bob")
	phone.waitLine(t, "#messages li.message", "bobping")
	phone.waitUnread(t, "@bob", 0)
	laptop.waitUnread(t, "@bob", 0)
	// A reply from either device is alice's, on both.
	phone.say(t, "pong")
	laptop.openConv(t, "@bob")
	laptop.waitLine(t, "#messages li.message.mine", "alicepong")

	// bob saw alice come online once, and never leave.
	var joined, left int
	for _, ev := range bob.until(t, func(ev *chatv1.ChatResponse) bool { return ev.GetMessage().GetText() == "pong" }) {
		if ev.GetUserJoined().GetUser().GetUsername() == "alice" {
			joined++
		}
		if ev.GetUserLeft().GetUser().GetUsername() == "alice" {
			left++
		}
	}
	if joined != 0 || left != 0 {
		t.Errorf("bob saw alice join %d and leave %d times as her second device came; want neither", joined, left)
	}
}

func TestBrowserDeviceLinkRefused(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "", "--max-devices-per-user", "1")
	laptop := openTab(t, newBrowser(t), "alice's laptop", srv.url)
	laptop.login(t, "alice")
	laptop.waitUsers(t, "alice you")
	link := laptop.addDeviceLink(t)
	phoneBrowser := newBrowser(t)

	// A key that is not alice's is no key: her name is taken.
	wrong := srv.url + "/#" + url.Values{"device": {"not-her-key"}, "name": {"alice"}}.Encode()
	phone := openPage(t, phoneBrowser, "a phone with a wrong link", wrong)
	phone.waitVisible(t, "login-view", true)
	phone.waitLine(t, "#login-error", `This link cannot add this device as alice: its key is not the one of alice's devices now`)
	if got := phone.href(t); got != srv.url+"/" {
		t.Errorf("after a refused link the address bar shows %q; want %s/ (no key)", got, srv.url)
	}

	// Her own link, past the most devices she may be on.
	phone = openPage(t, phoneBrowser, "a phone past the devices allowed", link)
	phone.waitVisible(t, "login-view", true)
	phone.waitLine(t, "#login-error", "This link cannot add this device: you are on 1 device, the most allowed")
	laptop.waitUsers(t, "alice you")
	if n := laptop.count(t, "#messages li.notice", "Reconnected"); n != 0 {
		t.Errorf("the laptop lost its session to the refused devices (%d reconnects)", n)
	}
}
