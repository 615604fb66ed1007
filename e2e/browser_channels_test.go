package e2e_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/internal/netproxy"
	"github.com/chromedp/chromedp"
)

// The page's channels, private conversations, history and resume, driven
// in headless Chromium against the real chatd.

// loginAll logs each tab in under its name and waits until every tab lists
// everyone online.
func loginAll(t *testing.T, tabs ...*tab) {
	t.Helper()
	var names []string
	for _, tb := range tabs {
		tb.login(t, tb.name)
		tb.waitConvs(t, "#general") // welcome, and general with it
		names = append(names, tb.name)
	}
	for _, tb := range tabs {
		var want []string
		for _, n := range names {
			if n == tb.name {
				n += " you"
			}
			want = append(want, n)
		}
		tb.waitUsers(t, want...)
	}
}

// entries returns the lines of the conversation shown, each as its classes,
// "|", then sender and text (or the whole text of a separator), without
// the time.
func (tb *tab) entries(t *testing.T) []string {
	t.Helper()
	var out []string
	tb.eval(t, `Array.from(document.querySelectorAll("#messages li"), li => {
		const text = li.querySelector(".text");
		const sender = li.querySelector(".sender");
		return li.className + "|" + (sender ? sender.textContent : "") + (text ? text.textContent : li.textContent);
	})`, &out)
	return out
}

// pageText returns every text on the page, whatever is shown.
func (tb *tab) pageText(t *testing.T) string {
	t.Helper()
	var s string
	tb.eval(t, `document.body.textContent`, &s)
	return s
}

func TestBrowserChannels(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "", "--max-channels-per-user", "2")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	bob := openTab(t, browser, "bob", srv.url)
	carol := openTab(t, browser, "carol", srv.url)
	loginAll(t, alice, bob, carol)

	alice.joinChannel(t, "#Rust") // created, shown as written
	alice.waitConvs(t, "#general", "#rust")
	alice.waitLine(t, "#conv-title", "#Rust")
	alice.waitLine(t, "#messages li.notice", "You joined #Rust")
	bob.joinChannel(t, "rust")
	bob.waitConvs(t, "#general", "#rust")
	alice.waitLine(t, "#messages li.notice", "bob joined #Rust")
	alice.waitFor(t, waitTimeout, "the members of #Rust", "#members li", func(got []string) bool {
		return slices.Equal(got, []string{"alice you", "bob"})
	})
	alice.waitLine(t, "#member-count", "In #Rust (2)")

	// A message in #Rust reaches its members; one that is not shown counts
	// as unread.
	bob.openConv(t, "#general")
	alice.say(t, "only for rustaceans")
	alice.waitLine(t, "#messages li.message.mine", "aliceonly for rustaceans")
	bob.waitUnread(t, "#rust", 1)
	alice.waitUnread(t, "#rust", 0)
	bob.openConv(t, "#rust")
	bob.waitLine(t, "#messages li.message", "aliceonly for rustaceans")
	bob.waitUnread(t, "#rust", 0)

	// carol, in general only, never hears of it. Events reach her in the
	// server's order, so once she has alice's later message in general she
	// would have had the earlier one.
	alice.openConv(t, "#general")
	alice.say(t, "hello everyone")
	carol.waitLine(t, "#messages li.message", "alicehello everyone")
	carol.waitConvs(t, "#general")
	if s := carol.pageText(t); strings.Contains(s, "rustaceans") {
		t.Errorf("carol, not in #Rust, was shown its message: %q", s)
	}

	// The channel list, with member counts.
	carol.run(t, chromedp.Click("#browse", chromedp.ByQuery))
	carol.waitFor(t, waitTimeout, "the channel list", "#channel-list li", func(got []string) bool {
		return slices.Equal(got, []string{"#general3 membersOpen", "#Rust2 membersJoin"})
	})
	carol.run(t, chromedp.Click("#channel-close", chromedp.ByQuery))

	// A refused join is explained.
	bob.tryJoinChannel(t, "go")
	bob.waitLine(t, "#channel-error", "Could not join #go: you are in 2 channels, the most allowed: leave one first")
	bob.waitConvs(t, "#general", "#rust")

	// Leaving.
	alice.openConv(t, "#rust")
	bob.openConv(t, "#rust")
	bob.run(t, chromedp.Click("#conv-action", chromedp.ByQuery))
	bob.waitConvs(t, "#general")
	bob.waitLine(t, "#conv-title", "#general")
	alice.waitLine(t, "#messages li.notice", "bob left #Rust")
	alice.waitLine(t, "#member-count", "In #Rust (1)")
}

func TestBrowserPrivateMessages(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	bob := openTab(t, browser, "bob", srv.url)
	carol := openTab(t, browser, "carol", srv.url)
	loginAll(t, alice, bob, carol)

	alice.openPrivate(t, "bob")
	alice.waitConvs(t, "#general", "@bob")
	alice.say(t, "psst, bob")
	alice.waitLine(t, "#messages li.message.mine", "alicepsst, bob")

	bob.waitConvs(t, "#general", "@alice")
	bob.waitUnread(t, "@alice", 1)
	bob.waitLine(t, "#messages li", "carol joined") // still general
	bob.openConv(t, "@alice")
	bob.waitLine(t, "#messages li.message", "alicepsst, bob")
	bob.waitUnread(t, "@alice", 0)
	bob.say(t, "hi alice, between us")
	alice.waitLine(t, "#messages li.message:not(.mine)", "bobhi alice, between us")

	// carol sees none of it (the same barrier as for channels).
	alice.openConv(t, "#general")
	alice.say(t, "now for everyone")
	carol.waitLine(t, "#messages li.message", "alicenow for everyone")
	carol.waitConvs(t, "#general")
	if s := carol.pageText(t); strings.Contains(s, "psst") || strings.Contains(s, "between us") {
		t.Errorf("carol was shown a private message between alice and bob: %q", s)
	}

	// Nobody to write to once bob is gone.
	bob.close()
	alice.openConv(t, "@bob")
	alice.waitLine(t, "#messages li.notice", "bob left (disconnected)")
	alice.waitLine(t, "#conv-info", "private, offline")
	var disabled bool
	alice.eval(t, `document.getElementById("text").disabled`, &disabled)
	if !disabled {
		t.Error("the message box is enabled in a private conversation with someone offline")
	}
}

func TestBrowserChannelHistory(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "", "--history-size", "3")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	loginAll(t, alice)
	alice.say(t, "g1")
	alice.joinChannel(t, "books")
	alice.waitLine(t, "#conv-title", "#books")
	for _, s := range []string{"b1", "b2", "b3", "b4"} {
		alice.say(t, s)
	}
	alice.waitLine(t, "#messages li.message", "aliceb4")

	// A late joiner gets general's history on arrival, under a separator...
	bob := openTab(t, browser, "bob", srv.url)
	bob.login(t, "bob")
	bob.waitFor(t, waitTimeout, "general's history", "#messages li", func(got []string) bool { return len(got) == 3 })
	if got, want := bob.entries(t), []string{
		"separator|Earlier messages",
		"message history|aliceg1",
		"notice|You joined as bob",
	}; !slices.Equal(got, want) {
		t.Errorf("bob's general on arrival:\n got %q\nwant %q", got, want)
	}

	// ...and a channel's last messages (--history-size) when joining it,
	// then its live ones; with room on screen, the page scrolls back
	// further at once (History), under the same separator.
	bob.joinChannel(t, "books")
	bob.waitLine(t, "#conv-title", "#books")
	bob.waitFor(t, waitTimeout, "#books's history", "#messages li", func(got []string) bool { return len(got) == 6 })
	alice.say(t, "b5")
	bob.waitLine(t, "#messages li.message", "aliceb5")
	if got, want := bob.entries(t), []string{
		"separator|Earlier messages",
		"message history|aliceb1",
		"message history|aliceb2",
		"message history|aliceb3",
		"message history|aliceb4",
		"notice|You joined #books",
		"message|aliceb5",
	}; !slices.Equal(got, want) {
		t.Errorf("bob's #books:\n got %q\nwant %q", got, want)
	}
}

// proxied starts chatd with flags, and a proxy to its HTTP address whose
// page URL it returns besides.
func proxied(t *testing.T, flags ...string) (srv *webChatd, proxy *netproxy.Proxy, proxyURL string) {
	t.Helper()
	srv = startWebChatd(t, "", "", flags...)
	proxy, err := netproxy.New(strings.TrimPrefix(srv.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	return srv, proxy, "http://" + proxy.Addr()
}

// cutAndSend breaks alice's connection through proxy and keeps her page
// from reconnecting while bob sends ops in #ops and carol general in
// general; then it lets her back.
func cutAndSend(t *testing.T, proxy *netproxy.Proxy, alice, bob, carol *tab, ops []string, general string) {
	t.Helper()
	proxy.Refuse(true)
	if n := proxy.CloseConns(); n == 0 {
		t.Fatal("nothing to cut: alice's page has no connection through the proxy")
	}
	alice.waitLine(t, "#banner", "Connection lost")
	bob.waitLine(t, "#messages li.notice", "alice left (disconnected)")
	bob.sendAll(t, ops...)
	carol.sendAll(t, general)
	bob.waitLine(t, "#messages li.message.mine", ops[len(ops)-1])
	carol.waitLine(t, "#messages li.message.mine", general)
	proxy.Refuse(false)
	bob.waitLine(t, "#messages li.notice", "alice joined #ops") // back
}

// opsBeforeTheCut starts chatd with flags and three tabs: alice through a
// proxy that can cut her connection, bob and carol directly. alice and bob
// are in #ops, where alice has seen bob's "before the cut".
func opsBeforeTheCut(t *testing.T, flags ...string) (proxy *netproxy.Proxy, alice, bob, carol *tab) {
	t.Helper()
	srv, proxy, proxyURL := proxied(t, flags...)
	browser := newBrowser(t)
	alice = openTab(t, browser, "alice", proxyURL)
	bob = openTab(t, browser, "bob", srv.url)
	carol = openTab(t, browser, "carol", srv.url)
	loginAll(t, alice, bob, carol)
	alice.joinChannel(t, "ops")
	bob.joinChannel(t, "ops")
	alice.waitLine(t, "#messages li.notice", "bob joined #ops")
	bob.say(t, "before the cut")
	alice.waitLine(t, "#messages li.message", "bobbefore the cut")
	return proxy, alice, bob, carol
}

func TestBrowserResumesAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	proxy, alice, bob, carol := opsBeforeTheCut(t)

	missed := []string{"missed 1", "missed 2", "missed 3"}
	cutAndSend(t, proxy, alice, bob, carol, missed, "missed in general")
	alice.waitLine(t, "#messages li.notice", "Reconnected as alice.")
	alice.waitVisible(t, "banner", false)
	alice.waitLine(t, "#messages li.message", "bobmissed 3")
	bob.say(t, "after")
	alice.waitLine(t, "#messages li.message", "bobafter")

	// Everything once, in order, and the state kept: no warning, the
	// channel and its members, who is online.
	var msgs []string
	for _, e := range alice.entries(t) {
		if strings.HasPrefix(e, "message") {
			msgs = append(msgs, e)
		}
	}
	want := []string{"message|bobbefore the cut", "message|bobmissed 1", "message|bobmissed 2", "message|bobmissed 3", "message|bobafter"}
	if !slices.Equal(msgs, want) {
		t.Errorf("alice's #ops after the cut:\n got %q\nwant %q", msgs, want)
	}
	if n := alice.count(t, "#messages li.notice", "could not be recovered"); n != 0 {
		t.Errorf("alice was warned of lost messages %d times after a complete recovery", n)
	}
	alice.waitLine(t, "#member-count", "In #ops (2)")
	alice.waitUsers(t, "alice you", "bob", "carol") // kept: nobody else came or went
	alice.waitUnread(t, "#general", 1)
	alice.openConv(t, "#general")
	if n := alice.count(t, "#messages li.message", "carolmissed in general"); n != 1 {
		t.Errorf("alice's general shows carol's message %d times, want 1: %q", n, alice.entries(t))
	}
}

func TestBrowserIncompleteRecovery(t *testing.T) {
	t.Parallel()
	// Each session keeps 2 events for a resume: 5 missed are too many.
	proxy, alice, bob, carol := opsBeforeTheCut(t, "--resume-buffer", "2")

	missed := []string{"missed 1", "missed 2", "missed 3", "missed 4", "missed 5"}
	cutAndSend(t, proxy, alice, bob, carol, missed, "missed in general")
	alice.waitLine(t, "#messages li.notice.warn", "Reconnected as alice, but some of what happened while you were away could not be recovered")
	alice.waitVisible(t, "banner", false)
	alice.waitLine(t, "#messages li.notice", "You are back in #ops")

	// The session was taken back, so #ops is back, and its history brings
	// what was missed, without repeating what was shown.
	var msgs []string
	for _, e := range alice.entries(t) {
		if strings.HasPrefix(e, "message") || strings.HasPrefix(e, "separator") {
			msgs = append(msgs, e)
		}
	}
	want := []string{
		"message|bobbefore the cut",
		"separator|Earlier messages",
		"message history|bobmissed 1", "message history|bobmissed 2", "message history|bobmissed 3",
		"message history|bobmissed 4", "message history|bobmissed 5",
	}
	if !slices.Equal(msgs, want) {
		t.Errorf("alice's #ops after an incomplete recovery:\n got %q\nwant %q", msgs, want)
	}
	alice.waitConvs(t, "#general", "#ops")
	alice.waitLine(t, "#member-count", "In #ops (2)")
	bob.say(t, "after")
	alice.waitLine(t, "#messages li.message", "bobafter")
	alice.openConv(t, "#general")
	if n := alice.count(t, "#messages li.message", "carolmissed in general"); n != 1 {
		t.Errorf("alice's general shows carol's message %d times, want 1: %q", n, alice.entries(t))
	}
}

// Reloading the page takes the session back: same channels, with their
// history.
func TestBrowserReloadResumesSession(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	bob := openTab(t, browser, "bob", srv.url)
	loginAll(t, alice, bob)
	alice.joinChannel(t, "ops")
	bob.joinChannel(t, "ops")
	alice.say(t, "before the reload")
	bob.waitLine(t, "#messages li.message", "alicebefore the reload")

	alice.run(t, chromedp.Reload())
	alice.waitVisible(t, "chat-view", true)
	alice.waitConvs(t, "#general", "#ops")
	alice.waitLine(t, "#me", "alice")
	alice.openConv(t, "#ops")
	alice.waitLine(t, "#messages li.message.history", "alicebefore the reload")
	alice.waitLine(t, "#member-count", "In #ops (2)")
	bob.say(t, "welcome back")
	alice.waitLine(t, "#messages li.message", "bobwelcome back")
}

// A session taken over by another tab with its token (here: a copy of the
// first tab's sessionStorage, as a duplicated tab has) is not taken back.
func TestBrowserSessionTakenOverElsewhere(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	first := openTab(t, browser, "alice", srv.url)
	bob := openTab(t, browser, "bob", srv.url)
	loginAll(t, first, bob)
	var saved string
	first.eval(t, `sessionStorage.getItem("chatd.session")`, &saved)
	if saved == "" {
		t.Fatal("the page keeps no session in sessionStorage")
	}

	second := openTab(t, browser, "alice again", srv.url)
	second.run(t, chromedp.Evaluate(`sessionStorage.setItem("chatd.session", `+js(saved)+`)`, nil), chromedp.Reload())
	second.waitVisible(t, "chat-view", true)
	first.waitLine(t, "#banner", "This session continued in another tab or window")
	second.say(t, "from the second tab")
	bob.waitLine(t, "#messages li.message", "alicefrom the second tab")

	// The first tab stays put rather than taking the session back.
	time.Sleep(2 * time.Second) // longer than the first reconnect's backoff
	first.waitLine(t, "#banner", "This session continued in another tab or window")
	second.say(t, "still mine")
	bob.waitLine(t, "#messages li.message", "alicestill mine")
	bob.waitUsers(t, "alice", "bob you")
	if n := bob.count(t, "#messages li.notice", "alice left"); n != 0 {
		t.Errorf("bob saw alice leave %d times on a takeover, want none", n)
	}
}

// On a phone the conversation fills the screen and the lists open over it.
func TestBrowserPhoneWidth(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	bob := openTab(t, browser, "bob", srv.url)
	alice := openTab(t, browser, "alice", srv.url)
	alice.run(t, chromedp.EmulateViewport(390, 800))
	loginAll(t, bob, alice)

	shown := func(id string) bool {
		var ok bool
		alice.eval(t, `getComputedStyle(document.getElementById(`+js(id)+`)).display !== "none"`, &ok)
		return ok
	}
	if shown("sidebar") || !shown("menu") {
		t.Fatalf("at 390px: sidebar shown=%v, menu shown=%v; want the sidebar folded behind the menu", shown("sidebar"), shown("menu"))
	}
	alice.run(t, chromedp.Click("#menu", chromedp.ByQuery))
	if !shown("sidebar") {
		t.Fatal("the menu did not open the sidebar")
	}
	alice.openPrivate(t, "bob")
	if shown("sidebar") {
		t.Error("the sidebar stayed open over the conversation picked in it")
	}
	alice.say(t, "from a phone")
	bob.waitUnread(t, "@alice", 1)
}

// TestBrowserScreenshot takes docs/screenshot.png when CHATD_SCREENSHOT
// names where to write it.
func TestBrowserScreenshot(t *testing.T) {
	out := os.Getenv("CHATD_SCREENSHOT")
	if out == "" {
		t.Skip("set CHATD_SCREENSHOT=path/to/screenshot.png to take the README's screenshot")
	}
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	bob := openTab(t, browser, "bob", srv.url)
	carol := openTab(t, browser, "carol", srv.url)
	loginAll(t, bob, carol)
	bob.say(t, "morning all")
	carol.say(t, "morning! anyone up for lunch?")
	carol.joinChannel(t, "release")
	carol.say(t, "the 1.4 branch is cut")
	bob.joinChannel(t, "release")
	bob.say(t, "tagging it now")
	alice := openTab(t, browser, "alice", srv.url)
	alice.login(t, "alice")
	bob.waitLine(t, "#messages li.message", "bobtagging it now")
	alice.waitConvs(t, "#general")
	alice.joinChannel(t, "release")
	alice.waitLine(t, "#messages li.message.history", "bobtagging it now")
	bob.openConv(t, "#general")
	bob.say(t, "pizza at 12:30?")
	bob.openPrivate(t, "alice")
	bob.say(t, "can you review my PR after lunch?")
	carol.openConv(t, "#release")
	carol.say(t, "changelog is up, have a look")
	alice.waitUnread(t, "@bob", 1)
	alice.waitUnread(t, "#general", 1)
	alice.say(t, "looks good to me")
	alice.waitLine(t, "#messages li.message.mine", "looks good to me")

	var png []byte
	alice.run(t, chromedp.EmulateViewport(1000, 650), chromedp.CaptureScreenshot(&png))
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
