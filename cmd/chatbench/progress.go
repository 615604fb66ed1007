package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress prints a status line every so often while a run goes on, since
// a big run takes a while. On a terminal it rewrites one line in place;
// elsewhere (a log, a CI job) it prints plain lines.
type progress struct {
	w     io.Writer
	tty   bool
	every time.Duration

	mu      sync.Mutex
	status  func() string // nil: nothing to say
	printed bool          // a line in place is showing

	stop chan struct{}
	done chan struct{}
}

// startProgress starts printing to w every interval; 0 prints nothing.
func startProgress(w io.Writer, every time.Duration) *progress {
	p := &progress{w: w, tty: isTerminal(w), every: every, stop: make(chan struct{}), done: make(chan struct{})}
	if every <= 0 {
		close(p.done)
		return p
	}
	go p.loop()
	return p
}

// set says what to print from now on; nil stops printing.
func (p *progress) set(status func() string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = status
	p.clearLocked()
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			if p.status != nil {
				if p.tty {
					fmt.Fprintf(p.w, "\r%s\x1b[K", p.status())
					p.printed = true
				} else {
					fmt.Fprintln(p.w, p.status())
				}
			}
			p.mu.Unlock()
		}
	}
}

// clearLocked ends a line printed in place, so that what follows starts on
// a line of its own.
func (p *progress) clearLocked() {
	if p.printed {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.printed = false
	}
}

// close stops printing and waits until nothing more can be printed.
func (p *progress) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
