package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"
)

// console is join's terminal, when standard input and output are one: in
// raw mode, with x/term's line editor, which keeps the line being typed,
// after a prompt naming the current channel, whole and at the bottom while
// events are printed above it. Without it a line typed half-way would be
// cut by the next event, and nothing would say where it will go.
//
// Its methods are safe for concurrent use: the line editor locks itself,
// so the session's goroutine writes while the reader's edits.
type console struct {
	term  *term.Terminal
	fd    int         // standard input's, in raw mode until close
	saved *term.State // the mode to restore
	// stopResize stops following the terminal's size.
	stopResize func()

	mu     sync.Mutex // guards prompt and closed
	prompt string     // the prompt shown
	closed bool
}

// openConsole puts the terminal in raw mode and returns a console on it if
// stdin and stdout are both a terminal, and nil otherwise: in a pipe,
// lines are read as they come, with no prompt. interrupt is what Ctrl-C
// does: raw mode turns it from SIGINT into a byte. The caller must close
// the console, on every path, to give the terminal its mode back.
func openConsole(stdin io.Reader, stdout io.Writer, interrupt func()) (*console, error) {
	in, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil, nil
	}
	out, ok := stdout.(*os.File)
	if !ok || !term.IsTerminal(int(out.Fd())) {
		return nil, nil
	}
	fd := int(in.Fd())
	saved, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("cannot set up the terminal: %w", err)
	}
	c := &console{
		prompt: initialPrompt,
		term: term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{&keys{r: in, interrupt: interrupt}, out}, initialPrompt),
		fd:    fd,
		saved: saved,
	}
	c.resize()
	c.stopResize = onResize(c.resize)
	return c, nil
}

// initialPrompt is shown until the session says which channel is current.
// It must not be empty: x/term's editor redraws a changed prompt on the
// next write only if something of its line is on the screen, so a prompt
// set after the editor started reading with an empty one would not show
// until a key was pressed (seen as a rare test failure on a busy machine,
// when the reader starts before the welcome's channel is known).
const initialPrompt = "> "

// resize tells the line editor the terminal's width, which it needs to
// redraw a line that wraps.
func (c *console) resize() {
	// A terminal that does not know its size (a pty nobody sized) says 0:
	// the editor's default, 80 columns, is better than that.
	if w, h, err := term.GetSize(c.fd); err == nil && w > 0 {
		_ = c.term.SetSize(w, h)
	}
}

// Write prints p above the line being typed, which is then drawn again.
func (c *console) Write(p []byte) (int, error) {
	return c.term.Write(p)
}

// setPrompt shows prompt before the line being typed.
func (c *console) setPrompt(prompt string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || prompt == c.prompt {
		return
	}
	c.prompt = prompt
	c.term.SetPrompt(prompt)
	// An empty write draws the prompt and the line again, if they are
	// shown; if not, the editor draws them when it next reads.
	_, _ = c.term.Write(nil)
}

// readLines sends each line typed on lines, then the end of input (Ctrl-D
// on an empty line) as io.EOF, like readLines for a pipe. It stops early
// once done is closed.
func (c *console) readLines(lines chan<- input, done <-chan struct{}) {
	for {
		line, err := c.term.ReadLine()
		if errors.Is(err, term.ErrPasteIndicator) {
			err = nil // a pasted line is a line
		}
		if err == nil {
			select {
			case lines <- input{line: line}:
				continue
			case <-done:
				return
			}
		}
		select {
		case lines <- input{err: err}:
		case <-done:
		}
		return
	}
}

// close takes the prompt and the line being typed off the screen, so that
// what follows (the shell's prompt, chatctl's last error) starts on a clean
// line, and gives the terminal its mode back.
func (c *console) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.stopResize()
	// With an empty prompt, a line the reader starts after this shows
	// nothing; the empty write takes the current one away. The line being
	// typed is empty once the input ends or Ctrl-C cleared it.
	c.term.SetPrompt("")
	_, _ = c.term.Write(nil)
	if err := term.Restore(c.fd, c.saved); err != nil {
		return fmt.Errorf("cannot give the terminal its mode back (run 'stty sane' to): %w", err)
	}
	return nil
}

// keys passes what is typed on to the line editor, but for Ctrl-C, which
// raw mode delivers as a byte where a terminal in its usual mode sends
// SIGINT. It still means logging out: keys calls interrupt, as SIGINT
// does, and hands the editor the keys that clear the line being typed,
// which is dropped.
type keys struct {
	r         io.Reader
	interrupt func()
	buf       [256]byte
	pending   []byte // read and not handed on yet
	err       error  // the error of the read that filled pending, for after it
}

// ctrlC is the byte Ctrl-C types in raw mode; clearLine the keys that
// clear the editor's line: Ctrl-K (to its end), then Ctrl-U (to its start).
const (
	ctrlC     = 0x03
	clearLine = "\x0b\x15"
)

func (k *keys) Read(p []byte) (int, error) {
	if len(k.pending) == 0 && k.err == nil {
		n, err := k.r.Read(k.buf[:min(len(p), len(k.buf))])
		k.pending, k.err = k.buf[:n], err
	}
	n := 0
	for n < len(p) && len(k.pending) > 0 {
		b := k.pending[0]
		k.pending = k.pending[1:]
		if b == ctrlC {
			k.interrupt()
			k.pending = append([]byte(clearLine), k.pending...)
			continue
		}
		p[n] = b
		n++
	}
	if n == 0 && len(k.pending) == 0 && k.err != nil {
		err := k.err
		k.err = nil
		return 0, err
	}
	return n, nil
}
