package e2e_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

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
// port if empty) and gRPC on grpcAddr (likewise).
func startWebChatd(t *testing.T, grpcAddr, httpAddr string) *webChatd {
	t.Helper()
	if grpcAddr == "" {
		grpcAddr = "127.0.0.1:0"
	}
	if httpAddr == "" {
		httpAddr = "127.0.0.1:0"
	}
	p := start(t, chatdBin, "--grpc-addr", grpcAddr, "--http-addr", httpAddr)
	t.Cleanup(func() { p.terminate(t) })
	line := p.expect(t, `^chatd: gRPC listening on `)
	addr := strings.TrimPrefix(line, "chatd: gRPC listening on ")
	line = p.expect(t, `^chatd: chat page on http://`)
	return &webChatd{chatd: &chatd{proc: p, addr: addr}, url: strings.TrimPrefix(line, "chatd: chat page on ")}
}

// newBrowser starts a headless Chromium of the test's own, with a fresh
// profile. Its cleanup closes it.
func newBrowser(t *testing.T) context.Context {
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
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
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

// openTab opens url in a new tab of browser.
func openTab(t *testing.T, browser context.Context, name, url string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	tb := &tab{ctx: ctx, cancel: cancel, name: name}
	t.Cleanup(func() { tb.close() })
	// The first Run opens the tab and ties it to the context it is given,
	// so it gets the tab's own, not one with a timeout.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("%s: open tab: %v", name, err)
	}
	tb.run(t, chromedp.Navigate(url), chromedp.WaitVisible("#name", chromedp.ByQuery))
	return tb
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
