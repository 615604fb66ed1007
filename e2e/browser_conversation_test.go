package e2e_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/protobuf/proto"
)

// The conversation features of issue 19 on the page: links, mentions,
// replies and typing, against the real chatd, with raw gRPC clients as
// the others.

// link is a link in a message, as the page made it.
type link struct {
	Text, Href, Target, Rel string
}

// links returns the links in the texts of the messages shown.
func (tb *tab) links(t *testing.T) []link {
	t.Helper()
	var out []link
	tb.eval(t, `Array.from(document.querySelectorAll("#messages li.message .text a"), a => ({
		Text: a.textContent, Href: a.getAttribute("href"), Target: a.target, Rel: a.rel,
	}))`, &out)
	return out
}

// The http and https addresses in a message are links that open in a new
// tab and tell the site nothing; anything else that looks like an address
// (javascript:, a link written as markup) stays text.
func TestBrowserLinks(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	alice := openTab(t, newBrowser(t), "alice", srv.url)
	loginAll(t, alice)
	bob := &member{name: "bob"}
	bob.connect(t, srv.addr)

	const text = `docs at https://example.com/Go_(game)?q=1#top. or (http://example.org/a), ` +
		`not javascript:alert(1) nor <a href="javascript:alert(2)">this</a> nor ftp://example.net/f`
	bob.sendTo(t, "#general", text)
	alice.waitLine(t, "#messages li.message", "bob"+text) // the text, whole, as written
	rel := "noopener noreferrer nofollow"
	want := []link{
		{"https://example.com/Go_(game)?q=1#top", "https://example.com/Go_(game)?q=1#top", "_blank", rel},
		{"http://example.org/a", "http://example.org/a", "_blank", rel},
	}
	if got := alice.links(t); !slices.Equal(got, want) {
		t.Errorf("the links in %q are %+v; want %+v", text, got, want)
	}
	var made int
	alice.eval(t, `document.querySelectorAll('#chat-view a[href^="javascript"], #chat-view a[href^="ftp"]').length`, &made)
	if made != 0 {
		t.Errorf("%d links other than http(s) were made from %q; want none", made, text)
	}

	// A long address wraps on a phone rather than widening the page.
	long := "https://example.com/" + strings.Repeat("abcdefghij", 30)
	alice.say(t, "see "+long)
	alice.waitLine(t, "#messages li.message.mine", "alicesee "+long)
	alice.run(t, chromedp.EmulateViewport(390, 800))
	alice.fitsWidth(t, "a conversation with a long link")
}

// waitMentions waits until the conversation key shows n mentions of the
// user among its unread messages (no badge for 0).
func (tb *tab) waitMentions(t *testing.T, key string, n int) {
	t.Helper()
	want := []string{}
	if n > 0 {
		want = []string{fmt.Sprintf("@%d", n)}
	}
	tb.waitFor(t, waitTimeout, fmt.Sprintf("%d mentions in %s", n, key), fmt.Sprintf(`[data-conv=%s] .mention-badge`, js(key)), func(got []string) bool {
		return slices.Equal(got, want)
	})
}

// A message that names the user stands out, and the conversations count
// them beside their unread messages: the server's counts, as unread.
func TestBrowserMentions(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	alice := openTab(t, newBrowser(t), "alice", srv.url)
	loginAll(t, alice)
	alice.joinChannel(t, "ops")
	alice.openConv(t, "#general")
	bob := &member{name: "bob"}
	bob.connect(t, srv.addr)
	bob.request(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_JoinChannel{JoinChannel: &chatv1.JoinChannel{Channel: "ops"}}})
	bob.sendTo(t, "#ops", "@alice, the deploy is yours")
	bob.sendTo(t, "#ops", "nothing for alice@example.com")
	bob.sendTo(t, "#general", "morning @ALICE")
	alice.waitUnread(t, "#ops", 2)
	alice.waitMentions(t, "#ops", 1)

	// Seen as it came: highlighted, and nothing to count.
	alice.waitLine(t, "#messages li.message.mention", "bobmorning @ALICE")
	alice.waitUnread(t, "#general", 0)
	alice.waitMentions(t, "#general", 0)

	// The counts are the server's: a reload shows them again.
	alice.run(t, chromedp.Reload())
	alice.waitVisible(t, "chat-view", true)
	alice.waitConvs(t, "#general", "#ops")
	alice.waitUnread(t, "#ops", 2)
	alice.waitMentions(t, "#ops", 1)

	alice.openConv(t, "#ops")
	alice.waitLine(t, "#messages li.message.mention", "bob@alice, the deploy is yours")
	if n := alice.count(t, "#messages li.message.mention", "alice@example.com"); n != 0 {
		t.Error("a message with alice's mail address in it is highlighted as naming her")
	}
	alice.waitUnread(t, "#ops", 0)
	alice.waitMentions(t, "#ops", 0)
}

// inView reports whether the message id is within the conversation's
// scrolled view.
func (tb *tab) inView(t *testing.T, id string) bool {
	t.Helper()
	var in bool
	tb.eval(t, fmt.Sprintf(`(() => {
		const l = document.getElementById("messages").getBoundingClientRect();
		const r = document.querySelector("li.message[data-id=" + CSS.escape(%s) + "]").getBoundingClientRect();
		return r.top >= l.top && r.bottom <= l.bottom;
	})()`, js(id)), &in)
	return in
}

// Reply on a message answers it: the page shows what is answered above the
// message box until it is sent (or the reply cancelled), and a reply shows
// a quote of the message it answers, which scrolls to it.
func TestBrowserReplies(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "", "--message-rate", "0") // bob sends many at once
	alice := openTab(t, newBrowser(t), "alice", srv.url)
	loginAll(t, alice)
	bob := &member{name: "bob"}
	bob.connect(t, srv.addr)
	bob.sendTo(t, "#general", "lunch at noon?")
	var orig string
	bob.until(t, func(ev *chatv1.ChatResponse) bool {
		orig = ev.GetMessage().GetId()
		return ev.GetMessage().GetText() == "lunch at noon?"
	})
	reply := fmt.Sprintf(`li.message[data-id=%s] .reply-action`, js(orig))
	alice.waitLine(t, "#messages li.message", "boblunch at noon?")

	alice.run(t, chromedp.Click(reply, chromedp.ByQuery))
	alice.waitVisible(t, "reply-bar", true)
	alice.waitLine(t, "#reply-quote", "boblunch at noon?")
	alice.run(t, chromedp.Click("#reply-cancel", chromedp.ByQuery))
	alice.waitVisible(t, "reply-bar", false)
	alice.run(t, chromedp.Click(reply, chromedp.ByQuery))
	alice.waitVisible(t, "reply-bar", true)
	alice.say(t, "yes, 12:30")
	alice.waitVisible(t, "reply-bar", false)
	var answer *chatv1.Message
	bob.until(t, func(ev *chatv1.ChatResponse) bool {
		answer = ev.GetMessage()
		return answer.GetText() == "yes, 12:30"
	})
	if r := answer.GetReplyTo(); r.GetId() != orig || r.GetSender() != "bob" || r.GetExcerpt() != "lunch at noon?" {
		t.Errorf("alice's reply reached bob answering %v; want %s, bob's \"lunch at noon?\"", r, orig)
	}
	alice.waitLine(t, "#messages li.message.mine", "aliceyes, 12:30")
	if got := alice.text(t, "#messages li.message.mine .quote"); !slices.Equal(got, []string{"boblunch at noon?"}) {
		t.Errorf("alice's reply is shown quoting %q; want bob's \"lunch at noon?\"", got)
	}

	// Further down, a quote takes the reader back to the message answered.
	for i := range 40 {
		bob.sendTo(t, "#general", fmt.Sprintf("filler %d", i))
	}
	bob.request(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Send{Send: &chatv1.SendMessage{Text: "noon it is", ReplyTo: orig}}})
	alice.waitLine(t, "#messages li.message", "bobnoon it is")
	if got := alice.text(t, "#messages li.message:last-child .quote"); !slices.Equal(got, []string{"boblunch at noon?"}) {
		t.Errorf("bob's reply is shown quoting %q; want his \"lunch at noon?\"", got)
	}
	if alice.inView(t, orig) {
		t.Fatal("bob's first message is still in view after 40 more: the test cannot tell scrolling to it")
	}
	alice.run(t, chromedp.Click("#messages li.message:last-child .quote", chromedp.ByQuery))
	deadline := time.Now().Add(waitTimeout)
	for !alice.inView(t, orig) {
		if time.Now().After(deadline) {
			t.Fatal("clicking the quote of bob's \"lunch at noon?\" did not bring it into view")
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not an assertion
	}
}

// sentRequest is a request the page sent, and when, in milliseconds of
// the page's clock.
type sentRequest struct {
	at  float64
	req *chatv1.ChatRequest
}

// recordRequests has the page keep, from now on, every request it sends
// on its Chat streams, to be read by sentRequests. Call it before the page
// connects.
func (tb *tab) recordRequests(t *testing.T) {
	t.Helper()
	tb.run(t, chromedp.Evaluate(`(() => {
		const Real = WebSocket;
		window.chatdTestSent = [];
		window.WebSocket = class extends Real {
			send(data) {
				if (ArrayBuffer.isView(data)) {
					const b = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
					window.chatdTestSent.push({ At: performance.now(), Data: btoa(String.fromCharCode(...b)) });
				}
				super.send(data);
			}
		};
	})()`, nil))
}

// sentRequests returns the requests the page sent since recordRequests, in
// order. Each websocket message of improbable's grpc-web is a byte 0, then
// a gRPC frame: a flag byte 0, the length (4 bytes, big-endian) and the
// request; the one with the stream's headers is not a request.
func (tb *tab) sentRequests(t *testing.T) []sentRequest {
	t.Helper()
	var sent []struct {
		At   float64
		Data []byte
	}
	tb.eval(t, `window.chatdTestSent`, &sent)
	var out []sentRequest
	for _, s := range sent {
		b := s.Data
		if len(b) < 6 || b[0] != 0 || b[1] != 0 || int(binary.BigEndian.Uint32(b[2:6])) != len(b)-6 {
			continue
		}
		req := &chatv1.ChatRequest{}
		if err := proto.Unmarshal(b[6:], req); err != nil {
			t.Fatalf("%s: the page sent a request that does not decode: %v", tb.name, err)
		}
		out = append(out, sentRequest{s.At, req})
	}
	return out
}

// typing sends typing in a channel, or to recipient.
func (m *member) typing(t *testing.T, channel, recipient string, stopped bool) {
	t.Helper()
	m.request(t, &chatv1.ChatRequest{Action: &chatv1.ChatRequest_Typing{Typing: &chatv1.Typing{Channel: channel, Recipient: recipient, Stopped: stopped}}})
}

// untilTyping reads the member's events until one says that users (none:
// nobody) are typing in channel, or privately with the member.
func (m *member) untilTyping(t *testing.T, channel, with string, users ...string) {
	t.Helper()
	m.until(t, func(ev *chatv1.ChatResponse) bool {
		ts := ev.GetTyping()
		return ts != nil && ts.GetChannel() == channel && ts.GetWith() == with && slices.Equal(ts.GetUsers(), users) && !ts.GetSeveral()
	})
}

// waitTyping waits until the page says who is typing as want ("" for
// nobody).
func (tb *tab) waitTyping(t *testing.T, want string) {
	t.Helper()
	tb.waitFor(t, waitTimeout, fmt.Sprintf("typing shown as %q", want), "#typing", func(got []string) bool {
		return slices.Equal(got, []string{want})
	})
}

// The page shows who is typing in the conversation shown, from the typing
// events of chatd, and tells chatd when its person types: again every 2
// seconds at most while it goes on, stopped when the box is emptied or
// they go to another conversation, and not after sending (the message
// ends it).
func TestBrowserTyping(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	alice := openTab(t, newBrowser(t), "alice", srv.url)
	alice.recordRequests(t)
	loginAll(t, alice)
	alice.openConv(t, "#general")
	var bob, carol, dave = &member{name: "bob"}, &member{name: "carol"}, &member{name: "dave"}
	for _, m := range []*member{bob, carol, dave} {
		m.connect(t, srv.addr)
	}
	alice.waitUsers(t, "alice you", "bob", "carol", "dave")

	// Shown, and cleared by a message or a stop.
	bob.typing(t, "general", "", false)
	alice.waitTyping(t, "bob is typing…")
	carol.typing(t, "general", "", false)
	alice.waitTyping(t, "bob and carol are typing…")
	bob.sendTo(t, "#general", "done")
	alice.waitTyping(t, "carol is typing…")
	carol.typing(t, "general", "", true)
	alice.waitTyping(t, "")

	// Said as alice types, and stopped when she empties the box; her own
	// name is not shown to her.
	alice.run(t, chromedp.SendKeys("#text", "he", chromedp.ByQuery))
	bob.untilTyping(t, "general", "", "alice")
	dave.typing(t, "general", "", false)
	bob.untilTyping(t, "general", "", "alice", "dave")
	alice.waitTyping(t, "dave is typing…")
	alice.run(t, chromedp.SendKeys("#text", kb.Backspace+kb.Backspace, chromedp.ByQuery))
	bob.untilTyping(t, "general", "", "dave")
	dave.typing(t, "general", "", true)
	bob.untilTyping(t, "general", "")
	alice.waitTyping(t, "")

	// Said again while typing goes on, every 2 seconds at most; the message
	// ends it.
	for _, r := range "typing on" {
		alice.run(t, chromedp.SendKeys("#text", string(r), chromedp.ByQuery))
		time.Sleep(500 * time.Millisecond) // a person's pace: 4.5 s in all
	}
	alice.run(t, chromedp.SendKeys("#text", "\r", chromedp.ByQuery))
	bob.until(t, func(ev *chatv1.ChatResponse) bool { return ev.GetMessage().GetText() == "typing on" })
	time.Sleep(500 * time.Millisecond) // room for a stop after the message, were the page to send one
	var said []float64
	var stops, afterSend int
	sent := false
	for _, s := range alice.sentRequests(t) {
		ty := s.req.GetTyping()
		switch {
		case s.req.GetSend().GetText() == "typing on":
			sent = true
		case ty == nil:
		case ty.GetChannel() != "general" || ty.GetRecipient() != "":
			t.Errorf("alice's page said she typed in %v; she typed in #general only", ty)
		case sent:
			afterSend++
		case ty.GetStopped():
			stops++
		default:
			said = append(said, s.at)
		}
	}
	if stops != 1 || afterSend != 0 {
		t.Errorf("alice's page said she stopped typing %d times, and %d typing after sending; want 1 (she emptied the box once) and none", stops, afterSend)
	}
	if len(said) < 3 {
		t.Errorf("alice's page said she was typing %d times, typing for 4.5 s after a first word; want at least 3 (once for the first, again every 2 s)", len(said))
	}
	for i := 1; i < len(said); i++ {
		if gap := said[i] - said[i-1]; gap < 1990 {
			t.Errorf("alice's page said she was typing twice within %.0f ms; want 2 s apart at least", gap)
		}
	}

	// Going to another conversation stops it; privately it goes to the
	// one talked to.
	alice.run(t, chromedp.SendKeys("#text", "x", chromedp.ByQuery))
	bob.untilTyping(t, "general", "", "alice")
	alice.openPrivate(t, "bob")
	bob.untilTyping(t, "general", "")
	alice.run(t, chromedp.SendKeys("#text", "y", chromedp.ByQuery))
	bob.untilTyping(t, "", "alice", "alice")

	// And bob's, to alice, shows in their conversation until he stops.
	bob.typing(t, "", "alice", false)
	alice.waitTyping(t, "bob is typing…")
	bob.typing(t, "", "alice", true)
	alice.waitTyping(t, "")
}
