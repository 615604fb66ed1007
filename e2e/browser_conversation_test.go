package e2e_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"github.com/chromedp/chromedp"
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
