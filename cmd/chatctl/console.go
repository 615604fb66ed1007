package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unicode/utf8"

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
		}{&keys{r: in, interrupt: interrupt, probe: true}, out}, initialPrompt),
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
// once done is closed. Meanwhile it sends the line being typed, as a
// draft, whenever what is typed changes it (but for the empty line that
// follows Enter), for the session to say the user is typing.
func (c *console) readLines(lines chan<- input, done <-chan struct{}) {
	// x/term's editor says what its line holds only on Enter, and to
	// AutoCompleteCallback, which it calls with the line for each key it
	// has no use for: keys ends each read with such a key, probeKey, so
	// the callback sees the line once what was read is applied. It runs
	// on this goroutine, inside ReadLine, with the editor unlocked.
	shown := "" // the line last sent as a draft
	c.term.AutoCompleteCallback = func(line string, _ int, key rune) (string, int, bool) {
		if key == probeKey && line != shown {
			shown = line
			select {
			case lines <- input{line: line, draft: true}:
			case <-done:
			}
		}
		return "", 0, false // the key is ignored, as the editor does
	}
	for {
		line, err := c.term.ReadLine()
		shown = "" // the editor's line is empty now, or the input over
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
//
// With probe set, keys also hands the editor probeKey after the keys of
// each read from the terminal (see console.readLines), once they are whole
// keys: never inside an escape sequence (an arrow key, ESC [ A) or a
// character's UTF-8 bytes, which it would cut in two, nor in a bracketed
// paste, where the editor takes every key into the line.
type keys struct {
	r         io.Reader
	interrupt func()
	probe     bool
	buf       [256]byte
	pending   []byte // read and not handed on yet
	err       error  // the error of the read that filled pending, for after it

	tail     []byte // the end of what was handed on that is no whole key yet
	paste    bool   // the keys handed on are in a bracketed paste
	probeDue bool   // probeKey is to follow the keys handed on
}

// probeKey is the key keys slips in for console.readLines: NUL, which
// x/term's editor passes to AutoCompleteCallback and otherwise ignores.
// A NUL typed (Ctrl-Space) is taken for one, which does no harm.
const probeKey = 0

// maxKeyTail bounds keys.tail: an escape sequence that never ends (a
// stray ESC followed by no letter) is no reason to keep every byte after
// it.
const maxKeyTail = 64

// ctrlC is the byte Ctrl-C types in raw mode; clearLine the keys that
// clear the editor's line: Ctrl-K (to its end), then Ctrl-U (to its start).
const (
	ctrlC     = 0x03
	clearLine = "\x0b\x15"
)

func (k *keys) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(k.pending) == 0 && k.err == nil && !k.probeDue {
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
	if k.probe {
		k.follow(p[:n])
		// After all of a read, in the same Read if there is room, or
		// alone in the next.
		if k.probeDue && len(k.pending) == 0 && n < len(p) {
			p[n] = probeKey
			n++
			k.probeDue = false
		}
	}
	if n == 0 && len(k.pending) == 0 && k.err != nil {
		err := k.err
		k.err = nil
		return 0, err
	}
	return n, nil
}

// follow follows the keys handed on in b as x/term's editor reads them,
// to know whether they end with a whole key, out of a bracketed paste:
// a probe may follow them then.
func (k *keys) follow(b []byte) {
	if len(b) == 0 {
		return
	}
	k.tail = append(k.tail, b...)
	for len(k.tail) > 0 {
		n := keyLen(k.tail)
		if n == 0 {
			break
		}
		switch key := k.tail[:n]; {
		case bytes.Equal(key, pasteStart):
			k.paste = true
		case bytes.Equal(key, pasteEnd):
			k.paste = false
		}
		k.tail = k.tail[n:]
	}
	if len(k.tail) > maxKeyTail {
		k.tail = nil
	}
	k.tail = append([]byte(nil), k.tail...) // not to hold what b's array held
	k.probeDue = len(k.tail) == 0 && !k.paste
}

// The keys a terminal sends around a bracketed paste.
var (
	pasteStart = []byte("\x1b[200~")
	pasteEnd   = []byte("\x1b[201~")
)

// keyLen is the length of the key b starts with, as x/term's editor
// parses keys, or 0 if b holds only its start: an escape sequence ends
// with its first letter or "~", anything else is one UTF-8 character.
func keyLen(b []byte) int {
	if b[0] == 0x1b {
		for i := 1; i < len(b); i++ {
			if c := b[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '~' {
				return i + 1
			}
		}
		return 0
	}
	if !utf8.FullRune(b) {
		return 0
	}
	_, n := utf8.DecodeRune(b)
	return n
}
