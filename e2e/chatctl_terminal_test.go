//go:build linux

package e2e_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// These tests run chatctl join in a pseudo-terminal, as a person would,
// and look at the screen a terminal would show.

// screenCols is the width of the test's terminal: wide enough that no line
// wraps, which keeps the screen model simple.
const screenCols = 200

// shortID is the number a terminal shows before each message, for /reply.
const shortID = `\[\d+\] `

// screen is what a VT100-like terminal shows after the output it was fed:
// enough of one for x/term's line editor (cursor moves, erasing to the end
// of a line) and plain output. Rows grow downward without scrolling. Its
// methods are safe for concurrent use.
type screen struct {
	mu       sync.Mutex
	rows     [][]rune
	row, col int
	pending  []byte        // an escape sequence or a rune not complete yet
	changed  chan struct{} // signalled on every write
	raw      []byte        // everything written, for what the model leaves out (styles, the bell)
}

func newScreen() *screen {
	return &screen{rows: [][]rune{nil}, changed: make(chan struct{}, 1)}
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw = append(s.raw, p...)
	b := append(s.pending, p...)
	s.pending = nil
	for len(b) > 0 {
		n := s.feed(b)
		if n == 0 {
			s.pending = append([]byte(nil), b...) // wait for the rest
			break
		}
		b = b[n:]
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

// feed interprets the start of b and returns how many bytes it used, or 0
// if b starts with something incomplete.
func (s *screen) feed(b []byte) int {
	switch b[0] {
	case '\r':
		s.col = 0
		return 1
	case '\n':
		s.moveTo(s.row+1, s.col)
		return 1
	case '\b':
		s.col = max(s.col-1, 0)
		return 1
	case '\t':
		s.col = (s.col/8 + 1) * 8
		return 1
	case 0x1b:
		if len(b) < 2 {
			return 0
		}
		if b[1] != '[' {
			return 2 // not used by what is tested
		}
		i := 2
		for i < len(b) && (b[i] < 0x40 || b[i] > 0x7e) {
			i++
		}
		if i == len(b) {
			return 0
		}
		s.csi(string(b[2:i]), b[i])
		return i + 1
	}
	if b[0] < 0x20 || b[0] == 0x7f {
		return 1 // other control characters do nothing visible here
	}
	if !utf8.FullRune(b) {
		return 0
	}
	r, n := utf8.DecodeRune(b)
	s.put(r)
	return n
}

// csi applies the control sequence ESC [ params final.
func (s *screen) csi(params string, final byte) {
	n, err := strconv.Atoi(params)
	if err != nil || n == 0 {
		n = 1
	}
	switch final {
	case 'A':
		s.moveTo(max(s.row-n, 0), s.col)
	case 'B':
		s.moveTo(s.row+n, s.col)
	case 'C':
		s.col += n
	case 'D':
		s.col = max(s.col-n, 0)
	case 'K': // erase to the end of the line
		if s.col < len(s.rows[s.row]) {
			s.rows[s.row] = s.rows[s.row][:s.col]
		}
	case 'J': // erase the screen
		s.rows, s.row, s.col = [][]rune{nil}, 0, 0
	case 'H':
		s.row, s.col = 0, 0
	}
}

func (s *screen) moveTo(row, col int) {
	for len(s.rows) <= row {
		s.rows = append(s.rows, nil)
	}
	s.row, s.col = row, col
}

func (s *screen) put(r rune) {
	line := s.rows[s.row]
	for len(line) <= s.col {
		line = append(line, ' ')
	}
	line[s.col] = r
	s.rows[s.row] = line
	s.col++
}

// lines returns the screen's rows without trailing blanks, and the row and
// column of the cursor.
func (s *screen) lines() (rows []string, row, col int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rows {
		rows = append(rows, strings.TrimRight(string(r), " "))
	}
	return rows, s.row, s.col
}

// output returns everything written to the screen, escapes included.
func (s *screen) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.raw)
}

func (s *screen) String() string {
	rows, row, col := s.lines()
	return fmt.Sprintf("%s\n(cursor at row %d, column %d)", strings.Join(rows, "\n"), row, col)
}

// terminal is chatctl join running in a pseudo-terminal.
type terminal struct {
	master  *os.File // what a terminal emulator holds: keys go in, output comes out
	tty     *os.File // the terminal's own side, which chatctl has as stdin, stdout and stderr
	screen  *screen
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// openPTY opens a pseudo-terminal of screenCols columns.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		master.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN) // ptsname
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	// Opened blocking, as a terminal is for the programs on it.
	name := "/dev/pts/" + strconv.Itoa(n)
	tfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	tty = os.NewFile(uintptr(tfd), name)
	if err := unix.IoctlSetWinsize(tfd, unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: screenCols}); err != nil {
		t.Fatal(err)
	}
	return master, tty
}

// startTerminal starts chatctl with args in a new pseudo-terminal, as the
// session leader of its own, like a shell's job. Its cleanup closes the
// terminal, and kills chatctl if it is still running.
func startTerminal(t *testing.T, args ...string) *terminal {
	t.Helper()
	master, tty := openPTY(t)
	term := &terminal{master: master, tty: tty, screen: newScreen(), cmd: exec.Command(chatctlBin, args...), exited: make(chan struct{})}
	term.cmd.Stdin, term.cmd.Stdout, term.cmd.Stderr = tty, tty, tty
	term.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := term.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(term.screen, master) // until the master is closed
	}()
	go func() {
		term.waitErr = term.cmd.Wait()
		close(term.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-term.exited:
		case <-time.After(waitTimeout):
			t.Errorf("chatctl still running at the end of the test; killing it\n%s", term.screen)
			_ = term.cmd.Process.Kill()
			<-term.exited
		}
		tty.Close()
		master.Close()
		<-copied
	})
	return term
}

// typeKeys types keys on the terminal.
func (term *terminal) typeKeys(t *testing.T, keys string) {
	t.Helper()
	if _, err := io.WriteString(term.master, keys); err != nil {
		t.Fatalf("typing %q: %v", keys, err)
	}
}

// waitFor waits until the screen satisfies ok, which is given its rows and
// the cursor's position.
func (term *terminal) waitFor(t *testing.T, what string, ok func(rows []string, row, col int) bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		if ok(term.screen.lines()) {
			return
		}
		select {
		case <-term.screen.changed:
		case <-deadline.C:
			t.Fatalf("the screen does not show %s within %s:\n%s", what, waitTimeout, term.screen)
		}
	}
}

// waitPrompt waits until the last row of the screen is the line being
// typed, prompt then typed, with the cursor at its end.
func (term *terminal) waitPrompt(t *testing.T, prompt, typed string) {
	t.Helper()
	want := prompt + typed
	term.waitFor(t, fmt.Sprintf("%q at the bottom, the cursor after it", want), func(rows []string, row, col int) bool {
		return row == len(rows)-1 && rows[row] == strings.TrimRight(want, " ") && col == utf8.RuneCountInString(want)
	})
}

// waitRow waits until a row of the screen matches pattern.
func (term *terminal) waitRow(t *testing.T, pattern string) {
	t.Helper()
	term.waitFor(t, "a row matching "+pattern, func(rows []string, _, _ int) bool {
		for _, r := range rows {
			if matches(pattern, r) {
				return true
			}
		}
		return false
	})
}

// wait waits for chatctl to exit and returns its exit code.
func (term *terminal) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-term.exited:
	case <-time.After(waitTimeout):
		t.Fatalf("chatctl did not exit within %s:\n%s", waitTimeout, term.screen)
	}
	var exitErr *exec.ExitError
	if term.waitErr != nil && !errors.As(term.waitErr, &exitErr) {
		t.Fatal(term.waitErr)
	}
	return term.cmd.ProcessState.ExitCode()
}

// lineMode reports whether the terminal is in its usual mode: lines
// edited by the terminal, echoed, Ctrl-C a signal.
func (term *terminal) lineMode(t *testing.T) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(term.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	const usual = unix.ICANON | unix.ECHO | unix.ISIG
	return tio.Lflag&usual == usual && tio.Oflag&unix.OPOST != 0
}

func TestChatctlJoinInATerminal(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := startTerminal(t, "join", "--name", "alice", "--server", srv.addr)
	if !alice.lineMode(t) {
		t.Fatal("the pseudo-terminal does not start in line mode")
	}
	alice.waitPrompt(t, "#general> ", "")
	if alice.lineMode(t) {
		t.Error("chatctl shows its prompt with the terminal still in line mode")
	}

	// A line typed half-way stays whole, at the bottom, while another
	// user's message is printed on a row of its own; the message's
	// control characters are shown, not acted on.
	alice.typeKeys(t, "hel")
	alice.waitPrompt(t, "#general> ", "hel")
	code, _, stderr := runChatctl(t, "", "send", "--name", "bob", "--server", srv.addr, "hi alice \x1b[2J")
	if code != exitOK {
		t.Fatalf("bob's send: exit code %d\n%s", code, stderr)
	}
	alice.waitRow(t, clock+`\* bob left \(logged out\)$`)
	alice.waitPrompt(t, "#general> ", "hel")
	alice.waitRow(t, clock+shortID+`#general bob: hi alice \\x1b\[2J$`)

	alice.typeKeys(t, "lo\r")
	alice.waitRow(t, clock+shortID+`#general alice: hello$`)
	alice.waitPrompt(t, "#general> ", "")

	// The prompt names the channel lines go to.
	alice.typeKeys(t, "/join #go\r")
	alice.waitRow(t, clock+`\* you joined #go \(1 member\), your current channel$`)
	alice.waitPrompt(t, "#go> ", "")
	alice.typeKeys(t, "/switch #general\r")
	alice.waitRow(t, `^Talking in #general now\.$`)
	alice.waitPrompt(t, "#general> ", "")

	// Ctrl-C logs out, drops the line being typed, and gives the terminal
	// its mode back.
	alice.typeKeys(t, "never sent")
	alice.waitPrompt(t, "#general> ", "never sent")
	alice.typeKeys(t, "\x03")
	alice.waitRow(t, clock+`\* alice left \(logged out\)$`)
	if code := alice.wait(t); code != exitOK {
		t.Errorf("exit code %d after Ctrl-C, want 0\n%s", code, alice.screen)
	}
	if !alice.lineMode(t) {
		t.Errorf("the terminal is not in line mode after chatctl exited")
	}
	rows, row, _ := alice.screen.lines()
	for _, r := range rows {
		if strings.Contains(r, "never sent") || strings.HasSuffix(r, "> ") || strings.HasSuffix(r, ">") {
			t.Errorf("after the exit the screen still shows %q:\n%s", r, alice.screen)
		}
	}
	if rows[row] != "" {
		t.Errorf("after the exit the cursor is on %q, want an empty row for the shell:\n%s", rows[row], alice.screen)
	}
}

// Ctrl-D on an empty line ends the input, as at the end of a pipe: a
// logout, and the terminal's mode back.
func TestChatctlJoinInATerminalEndOfInput(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := startTerminal(t, "join", "--name", "alice", "--server", srv.addr)
	alice.waitPrompt(t, "#general> ", "")
	alice.typeKeys(t, "\x04")
	alice.waitRow(t, clock+`\* alice left \(logged out\)$`)
	if code := alice.wait(t); code != exitOK {
		t.Errorf("exit code %d after Ctrl-D, want 0\n%s", code, alice.screen)
	}
	if !alice.lineMode(t) {
		t.Errorf("the terminal is not in line mode after chatctl exited")
	}
}

// On a terminal, join says once how to join as the same user from another
// device, as a command to paste, the key in the environment; pasted, it
// joins.
func TestChatctlJoinInATerminalShowsTheOtherDeviceCommand(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	alice := startTerminal(t, "join", "--name", "alice", "--server", srv.addr)
	hint := `^To join as alice from another device: CHATD_DEVICE_KEY=([A-Za-z0-9_-]+) chatctl join --name alice --server ` + regexp.QuoteMeta(srv.addr) + `$`
	alice.waitRow(t, hint)
	alice.waitPrompt(t, "#general> ", "")
	var key string
	rows, _, _ := alice.screen.lines()
	for _, r := range rows {
		if m := regexp.MustCompile(hint).FindStringSubmatch(r); m != nil {
			if key != "" {
				t.Errorf("the command is shown twice:\n%s", alice.screen)
			}
			key = m[1]
		}
	}

	other := startEnv(t, []string{"CHATD_DEVICE_KEY=" + key}, chatctlBin, "join", "--name", "alice", "--server", srv.addr)
	other.send(t, "from the other device")
	other.stdin.Close()
	if code := other.wait(t); code != exitOK {
		t.Fatalf("the command shown: exit code %d\n%s", code, other.stderr)
	}
	alice.waitRow(t, clock+shortID+`#general alice: from the other device$`)
	alice.typeKeys(t, "\x04")
	if code := alice.wait(t); code != exitOK {
		t.Errorf("exit code %d after Ctrl-D, want 0\n%s", code, alice.screen)
	}
}
