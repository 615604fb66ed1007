package e2e_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// What the page does with what the server refuses, and with long words on
// a phone.

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

// On a phone (390 px), nothing people type widens the page, however long
// its words: errors quoting names, names in the lists and the conversation,
// message lines.
func TestBrowserLongWordsFitAPhone(t *testing.T) {
	t.Parallel()
	srv := startWebChatd(t, "", "")
	browser := newBrowser(t)
	// As long as chatd allows, in wide letters.
	me, other, channel := strings.Repeat("Wm", 16), strings.Repeat("Mw", 16), strings.Repeat("WM", 16)
	tooLong := strings.Repeat("Wmwm", 15) // 60 characters, no break
	phone := openTab(t, browser, me, srv.url)
	phone.run(t, chromedp.EmulateViewport(390, 800))
	desk := openTab(t, browser, other, srv.url)

	phone.login(t, tooLong)
	phone.waitLine(t, "#login-error", `"`+tooLong+`" cannot be used as a name`)
	phone.fitsWidth(t, "the form, refusing a 60-character name")

	loginAll(t, phone, desk)
	phone.run(t, chromedp.Click("#menu", chromedp.ByQuery))
	phone.joinChannel(t, channel) // which closes the lists
	desk.joinChannel(t, channel)
	phone.waitLine(t, "#messages li.notice", other+" joined #"+channel)
	desk.say(t, strings.Repeat("Wm", 150))
	phone.waitLine(t, "#messages li.message", other+strings.Repeat("Wm", 150))
	phone.sendAll(t, strings.Repeat("W", 4100))
	phone.waitLine(t, "#messages li.notice.error", "Not sent")
	phone.fitsWidth(t, "the conversation")

	phone.run(t, chromedp.Click("#menu", chromedp.ByQuery))
	phone.waitVisible(t, "members-section", true)
	phone.tryJoinChannel(t, tooLong)
	phone.waitLine(t, "#channel-error", "Could not join #"+tooLong)
	phone.fitsWidth(t, "the lists, and the channel box refusing a 60-character name")
	var joinFits bool
	phone.eval(t, `(() => {
		const r = document.querySelector("#channel-form button").getBoundingClientRect();
		return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth;
	})()`, &joinFits)
	if !joinFits {
		t.Error("the channel box's Join button is not within the screen")
	}
	// Nor do long names squeeze "Log out" onto two lines, or push a name
	// in the lists onto a line of its own under its dot.
	var squeezed []string
	phone.eval(t, `(() => {
		const out = [], rect = (id) => document.getElementById(id).getBoundingClientRect();
		if (rect("logout").height > rect("menu").height + 1) out.push("Log out takes more than one line");
		for (const b of document.querySelectorAll(".people button.person")) {
			if (b.getBoundingClientRect().top - b.parentElement.getBoundingClientRect().top > 10) out.push(b.textContent + " starts under its dot");
		}
		return out;
	})()`, &squeezed)
	if len(squeezed) > 0 {
		t.Errorf("long names squeeze the page: %q", squeezed)
	}

	phone.run(t, chromedp.Click("#browse", chromedp.ByQuery))
	phone.waitLine(t, "#channel-list li", "#"+channel)
	phone.fitsWidth(t, "the channel list")
	phone.run(t, chromedp.Click("#channel-close", chromedp.ByQuery))

	// The narrowest window with the lists beside the conversation.
	phone.run(t, chromedp.EmulateViewport(720, 800))
	phone.waitVisible(t, "members-section", true)
	phone.fitsWidth(t, "the page at 720 px")
}

// fitsWidth fails the test if the page is wider than the window, or any
// element shown reaches past it (what an ancestor cuts off with overflow
// hidden, as an ellipsis does, is not shown), or scrolls sideways, and
// says which.
func (tb *tab) fitsWidth(t *testing.T, what string) {
	t.Helper()
	var out []string
	tb.eval(t, `(() => {
		const vw = window.innerWidth, out = [];
		const sw = document.documentElement.scrollWidth;
		if (sw > vw) out.push("the page is " + sw + " px wide in a " + vw + " px window");
		const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + String(e.className).split(" ").join(".") : "");
		for (const e of document.querySelectorAll("body *")) {
			if (e.getClientRects().length === 0) continue; // not drawn
			let left = -Infinity, right = Infinity;
			for (let a = e.parentElement; a; a = a.parentElement) {
				if (!["hidden", "clip"].includes(getComputedStyle(a).overflowX)) continue;
				const c = a.getBoundingClientRect();
				left = Math.max(left, c.left);
				right = Math.min(right, c.right);
			}
			const r = e.getBoundingClientRect();
			left = Math.max(left, r.left);
			right = Math.min(right, r.right);
			if (right > left && (left < -0.5 || right > vw + 0.5)) out.push(name(e) + " spans " + Math.round(left) + " to " + Math.round(right) + " px");
			if (["auto", "scroll"].includes(getComputedStyle(e).overflowX) && e.scrollWidth > e.clientWidth + 1) {
				out.push(name(e) + " scrolls sideways: " + e.scrollWidth + " px in " + e.clientWidth);
			}
		}
		return out.slice(0, 10);
	})()`, &out)
	if len(out) > 0 {
		t.Errorf("%s: %s does not fit the window:\n%s", tb.name, what, strings.Join(out, "\n"))
	}
}
