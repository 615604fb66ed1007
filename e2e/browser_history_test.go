package e2e_test

import (
	"fmt"
	"strings"
	"testing"
)

// The page scrolls back: scrolled to the top of a conversation, it loads
// the messages before the oldest it shows from History, a page at a time,
// and keeps what the reader was looking at in view; on to the channel's
// first message, far past the few a joiner is shown.
func TestBrowserScrollBack(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "", "--message-rate", "0", "--history-size", "5")
	alice := &member{name: "alice"}
	alice.connect(t, srv.addr)
	const n = 230
	for i := range n {
		alice.sayIn(t, "general", fmt.Sprintf("message %03d", i))
	}

	browser := newBrowser(t)
	bob := openTab(t, browser, "bob", srv.url)
	bob.login(t, "bob")
	bob.waitLine(t, "#messages li .text", fmt.Sprintf("message %03d", n-1))
	// Scroll to the top until the first message is in, checking each time
	// that the line the reader had at the top is still in view.
	for tries := 0; ; tries++ {
		// Which message is at the top, and the scroll to the top, in one
		// go: a page the page asked for itself may come in at any time.
		var first string
		bob.eval(t, `(() => {
			const l = document.getElementById("messages");
			const t = l.querySelector("li.message .text");
			l.scrollTop = 0;
			l.dispatchEvent(new Event("scroll"));
			return t ? t.textContent : "";
		})()`, &first)
		if first == "message 000" {
			break
		}
		if tries == 50 {
			t.Fatalf("scrolled to the top 50 times and the oldest message shown is %q; want message 000", first)
		}
		bob.waitFor(t, waitTimeout, "older messages above "+first, "#messages li.message .text", func(got []string) bool {
			return len(got) > 0 && got[0] != first
		})
		// What was at the top is still on screen: the list did not jump
		// to the top of what was loaded.
		var visible bool
		bob.eval(t, fmt.Sprintf(`(() => {
			const l = document.getElementById("messages");
			const li = Array.from(l.querySelectorAll("li")).find(li => (li.querySelector(".text") || {}).textContent === %s);
			if (!li) return false;
			const r = li.getBoundingClientRect(), b = l.getBoundingClientRect();
			return r.bottom > b.top && r.top < b.bottom;
		})()`, js(first)), &visible)
		if !visible {
			t.Fatalf("after loading older messages, %q (at the top before) is out of view", first)
		}
	}
	texts := bob.text(t, "#messages li.message .text")
	if len(texts) != n {
		t.Fatalf("%d messages shown after scrolling back to the first; want %d, each once", len(texts), n)
	}
	for i, s := range texts {
		if want := fmt.Sprintf("message %03d", i); s != want {
			t.Fatalf("line %d is %q; want %q: scroll-back must keep the order", i, s, want)
		}
	}
	if strings.Contains(bob.pageText(t), "scroll-back:") {
		t.Error("the page reported a scroll-back error")
	}
}
