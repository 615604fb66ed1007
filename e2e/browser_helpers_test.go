package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which scripts/install-chromium.sh
// installs (make test runs it first).
const chromiumPath = "/usr/bin/chromium"

// webChatd is a running chatd that also serves the page.
type webChatd struct {
	*chatd
	url string // http://host:port of the page
}

// startWebChatd starts chatd with its HTTP listener on httpAddr (a free
// port if empty) and gRPC on grpcAddr (likewise), and more flags if given.
func startWebChatd(t *testing.T, grpcAddr, httpAddr string, flags ...string) *webChatd {
	t.Helper()
	if grpcAddr == "" {
		grpcAddr = "127.0.0.1:0"
	}
	if httpAddr == "" {
		httpAddr = "127.0.0.1:0"
	}
	p := start(t, chatdBin, append([]string{"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--data-dir", t.TempDir()}, flags...)...)
	t.Cleanup(func() { p.terminate(t) })
	line := p.expect(t, `^chatd: gRPC listening on `)
	addr := strings.TrimPrefix(line, "chatd: gRPC listening on ")
	line = p.expect(t, `^chatd: chat page on http://`)
	return &webChatd{chatd: &chatd{proc: p, addr: addr}, url: strings.TrimPrefix(line, "chatd: chat page on ")}
}

// newBrowser starts a headless Chromium of the test's own, with a fresh
// profile and the extra options given. Its cleanup closes it.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: run scripts/install-chromium.sh (make test does)", chromiumPath)
		}
		t.Skipf("%s is missing: run scripts/install-chromium.sh, or make test", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 700),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // root, in a container
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		// Without these, Chromium's own connections to the internet are
		// refused here and slow everything down.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		// This chromedp predates Chromium's top-layer event (sent when the
		// page opens a modal dialog), and says so for each: not an error.
		if format == "unhandled node event %T" {
			return
		}
		log.Printf("ERROR: "+format, args...)
	}))
	if err := chromedp.Run(bctx); err != nil { // starts the browser
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		_ = chromedp.Cancel(bctx) // closes the browser and waits for it
		cancelBrowser()
		cancelAlloc()
	})
	return bctx
}

// tab is one page in the browser.
type tab struct {
	ctx    context.Context
	cancel context.CancelFunc
	name   string // for failure messages
}

// openTab opens url in a new tab of browser, and waits for the login form.
func openTab(t *testing.T, browser context.Context, name, url string) *tab {
	t.Helper()
	tb := openPage(t, browser, name, url)
	tb.run(t, chromedp.WaitVisible("#name", chromedp.ByQuery))
	return tb
}

// openPage opens url in a new tab of browser, the front one, and waits
// only for the page to load: a link that joins by itself (a link for
// another device) may hide the form before it is seen.
func openPage(t *testing.T, browser context.Context, name, url string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	tb := &tab{ctx: ctx, cancel: cancel, name: name}
	t.Cleanup(func() { tb.close() })
	// The first Run opens the tab and ties it to the context it is given,
	// so it gets the tab's own, not one with a timeout.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("%s: open tab: %v", name, err)
	}
	tb.run(t, chromedp.Navigate(url), chromedp.WaitReady("body", chromedp.ByQuery))
	return tb
}

// front brings the tab to the front of its browser, as a person does
// before clicking in it: the other tabs are hidden, and this page is the
// one the person sees (visible and focused), which reads the conversation
// it shows.
func (tb *tab) front(t *testing.T) {
	t.Helper()
	tb.run(t, chromedp.ActionFunc(func(ctx context.Context) error {
		c := chromedp.FromContext(ctx)
		return target.ActivateTarget(c.Target.TargetID).Do(cdp.WithExecutor(ctx, c.Browser))
	}))
}

// close closes the tab, as a user closing it would.
func (tb *tab) close() {
	_ = chromedp.Cancel(tb.ctx)
	tb.cancel()
}

func (tb *tab) run(t *testing.T, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", tb.name, err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func (tb *tab) eval(t *testing.T, js string, out any) {
	t.Helper()
	tb.run(t, chromedp.Evaluate(js, out))
}

// text returns the text of every element matching selector, in order.
func (tb *tab) text(t *testing.T, selector string) []string {
	t.Helper()
	var out []string
	tb.eval(t, fmt.Sprintf(`Array.from(document.querySelectorAll(%q), e => e.textContent)`, selector), &out)
	return out
}

// waitFor waits until cond holds for the texts of selector, and fails with
// what was there if it does not within d.
func (tb *tab) waitFor(t *testing.T, d time.Duration, what, selector string, cond func([]string) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := tb.text(t, selector)
		if cond(got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not happen within %s; %s shows %q", tb.name, what, d, selector, got)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not an assertion
	}
}

// waitLine waits for an element of selector whose text contains s.
func (tb *tab) waitLine(t *testing.T, selector, s string) {
	t.Helper()
	tb.waitFor(t, waitTimeout, fmt.Sprintf("a line %q", s), selector, func(got []string) bool {
		for _, g := range got {
			if strings.Contains(g, s) {
				return true
			}
		}
		return false
	})
}

// waitUsers waits until the online list is exactly want (texts of its items).
func (tb *tab) waitUsers(t *testing.T, want ...string) {
	t.Helper()
	tb.waitFor(t, waitTimeout, fmt.Sprintf("online list %q", want), "#users li", func(got []string) bool {
		return strings.Join(got, "\n") == strings.Join(want, "\n")
	})
}

// login types name into the form and joins.
func (tb *tab) login(t *testing.T, name string) {
	t.Helper()
	tb.run(t,
		chromedp.WaitVisible("#name", chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById("name").value = ""`, nil),
		chromedp.SendKeys("#name", name, chromedp.ByQuery),
		chromedp.SendKeys("#name", "\r", chromedp.ByQuery),
	)
}

// say types text into the message box and presses Enter.
func (tb *tab) say(t *testing.T, text string) {
	t.Helper()
	tb.run(t,
		chromedp.WaitEnabled("#text", chromedp.ByQuery),
		chromedp.SendKeys("#text", text+"\r", chromedp.ByQuery),
	)
}

// visible reports whether the element with id is shown.
func (tb *tab) visible(t *testing.T, id string) bool {
	t.Helper()
	var hidden bool
	tb.eval(t, fmt.Sprintf(`document.getElementById(%q).hidden`, id), &hidden)
	return !hidden
}

// waitVisible waits until the element with id is shown (or hidden).
func (tb *tab) waitVisible(t *testing.T, id string, shown bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for tb.visible(t, id) != shown {
		if time.Now().After(deadline) {
			t.Fatalf("%s: #%s shown=%v, want %v within %s", tb.name, id, !shown, shown, waitTimeout)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not an assertion
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(b)
}

// joinChannel joins (or creates) the channel name and waits until it is
// the conversation shown.
func (tb *tab) joinChannel(t *testing.T, name string) {
	t.Helper()
	tb.tryJoinChannel(t, name)
	key := "#" + strings.ToLower(strings.TrimPrefix(name, "#"))
	tb.waitFor(t, waitTimeout, "#"+name+" shown", fmt.Sprintf(`[data-conv=%s][aria-current="true"]`, js(key)), func(got []string) bool { return len(got) == 1 })
}

// tryJoinChannel types name into the sidebar's channel box, in place of
// what it holds (a refused name is given back to it), and submits it.
func (tb *tab) tryJoinChannel(t *testing.T, name string) {
	t.Helper()
	tb.run(t,
		chromedp.WaitEnabled("#channel-name", chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById("channel-name").value = ""`, nil),
		chromedp.SendKeys("#channel-name", name+"\r", chromedp.ByQuery),
	)
}

// openConv brings the tab to the front, clicks the conversation key
// ("#general", "@bob") in the sidebar and waits until it is the one shown.
func (tb *tab) openConv(t *testing.T, key string) {
	t.Helper()
	sel := fmt.Sprintf(`[data-conv=%s]`, js(key))
	tb.front(t)
	tb.run(t, chromedp.Click(sel, chromedp.ByQuery))
	tb.waitFor(t, waitTimeout, "conversation "+key+" shown", sel+`[aria-current="true"]`, func(got []string) bool { return len(got) == 1 })
}

// waitConvs waits until the sidebar lists exactly the conversations keys, in order.
func (tb *tab) waitConvs(t *testing.T, keys ...string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		var got []string
		tb.eval(t, `Array.from(document.querySelectorAll("#sidebar [data-conv]"), e => e.dataset.conv)`, &got)
		if strings.Join(got, " ") == strings.Join(keys, " ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the sidebar lists %q, want %q within %s", tb.name, got, keys, waitTimeout)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not an assertion
	}
}

// waitUnread waits until the conversation key shows n unread messages (no
// badge for 0).
func (tb *tab) waitUnread(t *testing.T, key string, n int) {
	t.Helper()
	want := []string{}
	if n > 0 {
		want = []string{fmt.Sprint(n)}
	}
	tb.waitFor(t, waitTimeout, fmt.Sprintf("%d unread in %s", n, key), fmt.Sprintf(`[data-conv=%s] .badge`, js(key)), func(got []string) bool {
		return strings.Join(got, ",") == strings.Join(want, ",")
	})
}

// openPrivate clicks user in the online list, which opens a private
// conversation with them.
func (tb *tab) openPrivate(t *testing.T, user string) {
	t.Helper()
	var ok bool
	tb.eval(t, fmt.Sprintf(`(() => {
		const b = Array.from(document.querySelectorAll("#users button.person")).find(b => b.textContent === %s);
		if (b) b.click();
		return !!b;
	})()`, js(user)), &ok)
	if !ok {
		t.Fatalf("%s: %s is not in the online list as someone to click: %q", tb.name, user, tb.text(t, "#users li"))
	}
	tb.waitLine(t, "#conv-title", user)
}

// sendAll sends each text from the message box at once, without typing,
// so that they leave within one round trip to the browser.
func (tb *tab) sendAll(t *testing.T, texts ...string) {
	t.Helper()
	b, err := json.Marshal(texts)
	if err != nil {
		t.Fatal(err)
	}
	var ok bool
	tb.eval(t, fmt.Sprintf(`(() => {
		const input = document.getElementById("text"), form = document.getElementById("send-form");
		if (input.disabled) return false;
		for (const text of %s) { input.value = text; form.requestSubmit(); }
		return true;
	})()`, b), &ok)
	if !ok {
		t.Fatalf("%s: the message box is disabled", tb.name)
	}
}

// count returns how many elements of selector have text containing s.
func (tb *tab) count(t *testing.T, selector, s string) int {
	t.Helper()
	n := 0
	for _, g := range tb.text(t, selector) {
		if strings.Contains(g, s) {
			n++
		}
	}
	return n
}
