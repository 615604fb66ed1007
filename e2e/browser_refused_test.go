package e2e_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// What the page does with what the server refuses.

// A message the server refuses is said where it was written, and its text
// is put back in the box to be mended, as after a connection break. What
// was typed in the box since the send is not overwritten.
func TestBrowserRefusedMessageIsGivenBack(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	bob := openTab(t, browser, "bob", srv.url)
	loginAll(t, alice, bob)

	// 2,100 characters fit the box (4,096) but not chatd (4,096 bytes).
	tooLong := strings.Repeat("é", 2100)
	alice.sendAll(t, tooLong)
	alice.waitLine(t, "#messages li.notice.error", "message is too long")
	if v := alice.inputValue(t); v != tooLong {
		t.Errorf("the message box holds %d characters, want the %d of the refused message given back", len([]rune(v)), len([]rune(tooLong)))
	}

	// Something typed before the refusal comes back stays: one script
	// task sends and types, and the refusal cannot arrive in between.
	alice.eval(t, fmt.Sprintf(`(() => {
		const input = document.getElementById("text");
		input.value = %s;
		document.getElementById("send-form").requestSubmit();
		input.value = "typed since";
	})()`, js(tooLong)), nil)
	alice.waitFor(t, waitTimeout, "the second refusal", "#messages li.notice.error", func(got []string) bool { return len(got) == 2 })
	if v := alice.inputValue(t); v != "typed since" {
		t.Errorf("the message box holds %q, want what was typed since the send", shorten(v))
	}
	if got := alice.text(t, "#messages li.notice.error .text"); !strings.HasSuffix(got[1], "“"+strings.Repeat("é", 79)+"…”") {
		t.Errorf("the refusal does not quote the message not given back: %q", shorten(got[1]))
	}

	// Shortened, it goes.
	alice.run(t, chromedp.Evaluate(`document.getElementById("text").value = "éé"`, nil), chromedp.SendKeys("#text", "\r", chromedp.ByQuery))
	bob.waitLine(t, "#messages li.message", "aliceéé")
	if n := bob.count(t, "#messages li.message", "ééé"); n != 0 {
		t.Errorf("bob got %d of the messages refused", n)
	}
}

// A channel name the server refuses is put back in the channel box, under
// which the refusal is said; what was typed there since is not
// overwritten, and a join asked for elsewhere (the channel list) puts
// nothing in the box.
func TestBrowserRefusedChannelNameIsGivenBack(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "", "--max-channels-per-user", "2")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	bob := openTab(t, browser, "bob", srv.url)
	loginAll(t, alice, bob)

	long := strings.Repeat("channel", 6)
	alice.tryJoinChannel(t, long)
	alice.waitLine(t, "#channel-error", "Could not join #"+long+": ")
	if v := alice.channelBox(t); v != long {
		t.Errorf("the channel box holds %q, want the refused name %q given back", v, long)
	}

	alice.eval(t, `(() => {
		const input = document.getElementById("channel-name");
		input.value = "no spaces please";
		document.getElementById("channel-form").requestSubmit();
		input.value = "typed since";
	})()`, nil)
	alice.waitLine(t, "#channel-error", "Could not join #no spaces please: ")
	if v := alice.channelBox(t); v != "typed since" {
		t.Errorf("the channel box holds %q, want what was typed since the join", v)
	}

	bob.joinChannel(t, "ops")
	alice.joinChannel(t, "rust") // as many channels as alice may be in
	alice.run(t, chromedp.Click("#browse", chromedp.ByQuery))
	alice.waitLine(t, "#channel-list li", "#ops")
	alice.run(t, chromedp.Click(`#channel-list li[data-channel="ops"] button`, chromedp.ByQuery))
	alice.waitLine(t, "#channel-error", "Could not join #ops: ")
	if v := alice.channelBox(t); v != "" {
		t.Errorf("a join refused from the channel list put %q in the channel box", v)
	}
}

// channelBox returns what the channel box holds.
func (tb *tab) channelBox(t *testing.T) string {
	t.Helper()
	var v string
	tb.eval(t, `document.getElementById("channel-name").value`, &v)
	return v
}

// shorten cuts s for a failure message.
func shorten(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}
