package e2e_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// What the page does with requests a broken connection leaves unanswered:
// a message, a join, a channel list.

// watchSockets wraps the page's WebSocket before it logs in, so that the
// test can make the connections open now go silent one way or both
// (cutSockets), as a connection that is dying does before anyone notices:
// what is sent then is lost, and so is what arrives.
func (tb *tab) watchSockets(t *testing.T) {
	t.Helper()
	tb.run(t, chromedp.Evaluate(`(() => {
		const Real = WebSocket, open = new Set();
		window.chatdTestSockets = {
			// silence drops what the sockets open now send ("out"),
			// receive ("in") or both, from now on.
			silence(way) {
				for (const ws of open) {
					if (way !== "in") ws.dropOut = true;
					if (way !== "out") ws.dropIn = true;
				}
				return open.size;
			},
		};
		window.WebSocket = class extends Real {
			constructor(...args) {
				super(...args);
				open.add(this);
				this.addEventListener("close", () => open.delete(this));
				// Registered before the transport's own handler, so it
				// can keep a message from it.
				this.addEventListener("message", (e) => { if (this.dropIn) e.stopImmediatePropagation(); });
			}
			send(data) {
				if (!this.dropOut) super.send(data);
			}
		};
	})()`, nil))
}

// silence makes alice's open connections drop what goes way ("in", "out"
// or "both") from now on.
func (tb *tab) silence(t *testing.T, way string) {
	t.Helper()
	var n int
	tb.eval(t, fmt.Sprintf(`window.chatdTestSockets.silence(%s)`, js(way)), &n)
	if n == 0 {
		t.Fatalf("%s: no open connection to silence", tb.name)
	}
}

// inputValue returns what the message box holds.
func (tb *tab) inputValue(t *testing.T) string {
	t.Helper()
	var v string
	tb.eval(t, `document.getElementById("text").value`, &v)
	return v
}

// A message sent on a connection that dies before it reaches the server is
// neither echoed nor refused, and a complete recovery does not bring it
// back: once a later message is confirmed, the page says it was not
// delivered and gives its text back.
func TestBrowserMessageLostInBreakIsGivenBack(t *testing.T) {
	t.Parallel()
	srv, proxy, proxyURL := proxied(t)
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", proxyURL)
	bob := openTab(t, browser, "bob", srv.url)
	alice.watchSockets(t)
	loginAll(t, alice, bob)
	alice.say(t, "before the cut")
	bob.waitLine(t, "#messages li.message", "alicebefore the cut")

	alice.silence(t, "both")
	alice.say(t, "lost in the cut")
	if v := alice.inputValue(t); v != "" {
		t.Fatalf("the message box still holds %q after sending", v)
	}
	if n := proxy.CloseConns(); n == 0 {
		t.Fatal("nothing to cut")
	}
	alice.waitLine(t, "#messages li.notice", "Reconnected as alice.")
	if n := alice.count(t, "#messages li.notice", "could not be recovered"); n != 0 {
		t.Fatal("the recovery was incomplete; this test is about a complete one")
	}
	alice.say(t, "after the cut")
	bob.waitLine(t, "#messages li.message", "aliceafter the cut")
	alice.waitLine(t, "#messages li.notice.error", `Not delivered (the connection broke before it reached the server): “lost in the cut”`)
	if v := alice.inputValue(t); v != "lost in the cut" {
		t.Errorf("the message box holds %q, want the lost message given back", v)
	}
	if n := bob.count(t, "#messages li.message", "lost in the cut"); n != 0 {
		t.Errorf("bob got the message the test lost")
	}
	if n := alice.count(t, "#messages li", "Not delivered"); n != 1 {
		t.Errorf("alice was told %d times of a message not delivered, want once: %q", n, alice.entries(t))
	}

	// Sent again, it goes.
	alice.run(t, chromedp.SendKeys("#text", "\r", chromedp.ByQuery))
	bob.waitLine(t, "#messages li.message", "alicelost in the cut")
}

// After an incomplete recovery nothing tells whether a message sent
// before the break reached the server: the page says it may not have.
func TestBrowserMessageUnconfirmedAcrossIncompleteRecovery(t *testing.T) {
	t.Parallel()
	srv, proxy, proxyURL := proxied(t, "--resume-buffer", "2")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", proxyURL)
	bob := openTab(t, browser, "bob", srv.url)
	alice.watchSockets(t)
	loginAll(t, alice, bob)

	alice.silence(t, "both")
	alice.say(t, "perhaps lost")
	proxy.Refuse(true)
	if n := proxy.CloseConns(); n == 0 {
		t.Fatal("nothing to cut")
	}
	bob.waitLine(t, "#messages li.notice", "alice left (disconnected)")
	missed := []string{"missed 1", "missed 2", "missed 3", "missed 4", "missed 5"}
	bob.sendAll(t, missed...)
	bob.waitLine(t, "#messages li.message.mine", "missed 5")
	proxy.Refuse(false)
	alice.waitLine(t, "#messages li.notice.warn", "could not be recovered")
	alice.waitLine(t, "#messages li.notice.warn", `Perhaps not delivered (the connection broke before the server confirmed it): “perhaps lost”`)
	if v := alice.inputValue(t); v != "perhaps lost" {
		t.Errorf("the message box holds %q, want the unconfirmed message given back", v)
	}
}

// A join and a channel list asked for just before a break, whose answers
// the break lost (answers are not replayed on a resume), are asked again
// once the page is back: the refusal of the join is shown, and the channel
// list, instead of nothing and "Loading…" for good. A join that did get
// in is answered "already in" the second time, which is no error.
func TestBrowserAsksAgainWhatTheBreakLeftUnanswered(t *testing.T) {
	t.Parallel()
	srv, proxy, proxyURL := proxied(t, "--max-channels-per-user", "2")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", proxyURL)
	bob := openTab(t, browser, "bob", srv.url)
	alice.watchSockets(t)
	loginAll(t, alice, bob)
	alice.joinChannel(t, "rust") // alice is in as many channels as she may be
	bob.joinChannel(t, "ops")

	// The requests go out; their answers are lost.
	alice.silence(t, "in")
	alice.tryJoinChannel(t, "ops")
	alice.run(t, chromedp.Click("#browse", chromedp.ByQuery))
	alice.waitLine(t, "#channel-status", "Loading…")
	if n := proxy.CloseConns(); n == 0 {
		t.Fatal("nothing to cut")
	}
	alice.waitLine(t, "#channel-error", "Could not join #ops: you are in 2 channels, the most allowed: leave one first")
	alice.waitFor(t, waitTimeout, "the channel list", "#channel-list li", func(got []string) bool {
		return slices.Equal(got, []string{"#general2 membersOpen", "#ops1 memberJoin", "#rust1 memberOpen"})
	})
	alice.waitLine(t, "#channel-status", "3 channels")
	alice.run(t, chromedp.Click("#channel-close", chromedp.ByQuery))
	alice.waitConvs(t, "#general", "#rust")

	// Room for one more; this time the join gets in, and only its answer
	// is lost.
	alice.openConv(t, "#rust")
	alice.run(t, chromedp.Click("#conv-action", chromedp.ByQuery))
	alice.waitConvs(t, "#general")
	alice.silence(t, "in")
	alice.tryJoinChannel(t, "ops")
	bob.waitLine(t, "#messages li.notice", "alice joined #ops")
	if n := proxy.CloseConns(); n == 0 {
		t.Fatal("nothing to cut")
	}
	alice.waitConvs(t, "#general", "#ops")
	alice.waitLine(t, "#conv-title", "#ops")
	// The server answers a session's requests in order: once this is
	// echoed, the second join has been answered.
	alice.say(t, "in ops")
	alice.waitLine(t, "#messages li.message.mine", "alicein ops")
	bob.waitLine(t, "#messages li.message", "alicein ops")
	if s := alice.pageText(t); strings.Contains(s, "already in") || strings.Contains(s, "Refused") {
		t.Errorf("the second try of a join that got in was shown as refused: %q", s)
	}
	if s := alice.text(t, "#channel-error"); len(s) != 1 || s[0] != "" {
		t.Errorf("the channel box shows an error: %q", s)
	}
}
