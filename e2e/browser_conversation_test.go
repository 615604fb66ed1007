package e2e_test

import (
	"slices"
	"strings"
	"testing"

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
