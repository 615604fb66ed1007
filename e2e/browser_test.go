package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The page is driven in a real headless Chromium against the real chatd
// binary, over real sockets.

func TestBrowserTwoUsersChat(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	alice.login(t, "alice")
	alice.waitUsers(t, "alice you")
	bob := openTab(t, browser, "bob", srv.url)
	bob.login(t, "bob")
	bob.waitUsers(t, "alice", "bob you")
	alice.waitUsers(t, "alice you", "bob")
	alice.waitLine(t, "#messages li", "bob joined")

	alice.say(t, "hello bob")
	bob.waitLine(t, "#messages li.message", "alicehello bob")
	alice.waitLine(t, "#messages li.message.mine", "alicehello bob") // own messages are marked
	bob.say(t, "hi alice")
	alice.waitLine(t, "#messages li.message:not(.mine)", "bobhi alice")
	if got := alice.text(t, "#online-count"); len(got) != 1 || got[0] != "Online (2)" {
		t.Errorf("alice's count = %q, want Online (2)", got)
	}
}

func TestBrowserAndChatctl(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	cli := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	cli.expect(t, clock+`\* you joined as alice$`)

	browser := newBrowser(t)
	bob := openTab(t, browser, "bob", srv.url)
	bob.login(t, "bob")
	bob.waitUsers(t, "alice", "bob you")
	cli.expect(t, clock+`\* bob joined$`)

	bob.say(t, "hi from the browser")
	cli.expect(t, clock+`#general bob: hi from the browser$`)
	cli.send(t, "hi from the terminal")
	bob.waitLine(t, "#messages li.message", "alicehi from the terminal")
	cli.send(t, "/quit")
	bob.waitLine(t, "#messages li", "alice left (logged out)")
	bob.waitUsers(t, "bob you")
	if code := cli.wait(t); code != exitOK {
		t.Errorf("chatctl exit code %d, want 0", code)
	}
}

// A closed tab leaves everyone's list as a disconnect within a second or
// two, like a native client that goes away.
func TestBrowserClosedTabDisappears(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	alice.login(t, "alice")
	bob := openTab(t, browser, "bob", srv.url)
	bob.login(t, "bob")
	alice.waitUsers(t, "alice you", "bob")

	bob.close()
	alice.waitFor(t, 2*time.Second, "bob leaving as disconnected", "#messages li", func(got []string) bool {
		return len(got) > 0 && strings.Contains(got[len(got)-1], "bob left (disconnected)")
	})
	alice.waitUsers(t, "alice you")
}

// Log out goes back to the form and takes the user off everyone's list.
func TestBrowserLogout(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	alice.login(t, "alice")
	bob := openTab(t, browser, "bob", srv.url)
	bob.login(t, "bob")
	alice.waitUsers(t, "alice you", "bob")

	bob.run(t, chromedp.Click("#logout", chromedp.ByQuery))
	bob.waitVisible(t, "login-view", true)
	bob.waitVisible(t, "chat-view", false)
	alice.waitLine(t, "#messages li", "bob left (logged out)")
	alice.waitUsers(t, "alice you")

	// And the same name can join again at once.
	bob.login(t, "bob")
	alice.waitUsers(t, "alice you", "bob")
}

// A refused name is explained in the form, in plain words.
func TestBrowserJoinErrors(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	cli := chatctl(t, "join", "--name", "alice", "--server", srv.addr)
	cli.expect(t, `\* you joined as alice$`)

	browser := newBrowser(t)
	tb := openTab(t, browser, "tab", srv.url)
	tb.login(t, "ALICE")
	tb.waitLine(t, "#login-error", `The name "ALICE" is taken. Choose another one.`)
	tb.login(t, "a b")
	tb.waitLine(t, "#login-error", `"a b" cannot be used as a name`)
	if !tb.visible(t, "login-view") || tb.visible(t, "chat-view") {
		t.Error("after a refused join the form should still be shown, and the chat not")
	}
}

// What users type is shown as text: the tutorial's injection comes out
// literally, and no element is created from it.
func TestBrowserShowsMarkupAsText(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	const evil = `<img/src=x/onerror=alert(1)>`
	browser := newBrowser(t)
	tb := openTab(t, browser, "evil", srv.url)
	tb.login(t, evil)
	tb.waitUsers(t, evil+" you")
	tb.waitLine(t, "#me", evil)

	cli := chatctl(t, "join", "--name", "carol", "--server", srv.addr)
	cli.expect(t, `\* you joined as carol$`)
	cli.send(t, `<b>bold</b><script>alert(2)</script>`)
	tb.waitLine(t, "#messages li.message", `carol<b>bold</b><script>alert(2)</script>`)
	tb.say(t, `<i>mine</i>`)
	cli.expect(t, clock+`#general <img/src=x/onerror=alert\(1\)>: <i>mine</i>$`)
	tb.waitLine(t, "#messages li.message.mine", evil+`<i>mine</i>`)

	var n int
	tb.eval(t, `document.querySelectorAll("#chat-view img, #chat-view b, #chat-view i, #chat-view script").length`, &n)
	if n != 0 {
		t.Errorf("%d elements were made from what users typed, want none", n)
	}
}

// When chatd restarts, the page shows that the connection was lost,
// reconnects on its own, rejoins with the same name and rebuilds its list.
func TestBrowserReconnectsAfterRestart(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 2)
	grpcAddr, httpAddr := addrs[0], addrs[1]
	srv := startWebChatd(t, grpcAddr, httpAddr)
	browser := newBrowser(t)
	alice := openTab(t, browser, "alice", srv.url)
	alice.login(t, "alice")
	alice.waitUsers(t, "alice you")

	srv.terminate(t)
	alice.waitVisible(t, "banner", true)
	alice.waitLine(t, "#banner", "Connection lost")

	srv2 := startWebChatd(t, grpcAddr, httpAddr)
	cli := chatctl(t, "join", "--name", "bob", "--server", srv2.addr)
	cli.expect(t, `\* you joined as bob$`)
	alice.waitVisible(t, "banner", false)
	alice.waitLine(t, "#messages li", "Reconnected as alice")
	// From the new server's snapshot and events; who joined first is a race.
	alice.waitFor(t, waitTimeout, "both in the list", "#users li", func(got []string) bool {
		s := strings.Join(got, ",")
		return len(got) == 2 && strings.Contains(s, "alice you") && strings.Contains(s, "bob")
	})
	alice.say(t, "back again")
	cli.expect(t, clock+`#general alice: back again$`)
}
