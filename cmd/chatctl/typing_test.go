package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"golang.org/x/term"
)

// chunks is a terminal whose reads return one string each, as keys come
// in bursts, then io.EOF.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	if n == len((*c)[0]) {
		*c = (*c)[1:]
	} else {
		(*c)[0] = (*c)[0][n:]
	}
	return n, nil
}

// readAll reads k with reads of size n until io.EOF.
func readAll(t *testing.T, k *keys, n int) string {
	t.Helper()
	var all []byte
	buf := make([]byte, n)
	for {
		m, err := k.Read(buf)
		all = append(all, buf[:m]...)
		if errors.Is(err, io.EOF) {
			return string(all)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// keys follows each read from the terminal with the probe, once it ends
// with a whole key: not inside an escape sequence or a character's bytes,
// nor in a bracketed paste.
func TestKeysProbeAfterWholeKeys(t *testing.T) {
	t.Parallel()
	const P = "\x00"
	for _, tt := range []struct {
		name  string
		reads []string
		want  string
	}{
		{"letters", []string{"hel", "lo"}, "hel" + P + "lo" + P},
		{"an arrow key cut in two", []string{"a\x1b[", "D", "b"}, "a\x1b[D" + P + "b" + P},
		{"a character cut in two", []string{"caf\xc3", "\xa9!"}, "caf\xc3\xa9!" + P},
		{"delete", []string{"x\x1b[3~"}, "x\x1b[3~" + P},
		{"Ctrl-C", []string{"hi\x03"}, "hi" + clearLine + P},
		{"a bracketed paste", []string{"\x1b[200~pas", "ted\x1b[201~"}, "\x1b[200~pasted\x1b[201~" + P},
		{"a stray escape", []string{"\x1b", "[A", "z"}, "\x1b[A" + P + "z" + P},
	} {
		reads := chunks(tt.reads)
		k := &keys{r: &reads, interrupt: func() {}, probe: true}
		if got := readAll(t, k, 256); got != tt.want {
			t.Errorf("%s: handed on %q, want %q", tt.name, got, tt.want)
		}
	}
	// A read that fills the editor's buffer: the probe comes alone next.
	reads := chunks{"hello", "!"}
	k := &keys{r: &reads, interrupt: func() {}, probe: true}
	var got []string
	buf := make([]byte, 5)
	for {
		n, err := k.Read(buf)
		if err != nil {
			break
		}
		got = append(got, string(buf[:n]))
	}
	if want := []string{"hello", P, "!" + P}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("with 5-byte reads, handed on %q, want %q", got, want)
	}
}

// The console sends the line being typed as a draft whenever a burst of
// keys changes it, but for the empty line after Enter, then the line.
func TestConsoleSendsDrafts(t *testing.T) {
	t.Parallel()
	reads := chunks{"hel", "lo", "\x1b[D", "\x05\x7f\x7f\x7f\x7f\x7f", "/who", "\r", "hi", "\r", "b", "ye\r"}
	c := &console{term: term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{&keys{r: &reads, interrupt: func() {}, probe: true}, io.Discard}, "> ")}
	lines := make(chan input)
	done := make(chan struct{})
	defer close(done)
	go c.readLines(lines, done)
	var got []string
	for in := range lines {
		switch {
		case in.err != nil:
			got = append(got, "end")
		case in.draft:
			got = append(got, "draft "+in.line)
		default:
			got = append(got, "line "+in.line)
		}
		if in.err != nil {
			break
		}
	}
	want := []string{
		"draft hel", "draft hello", // the cursor moving changes nothing, Ctrl-E neither
		"draft ", "draft /who", "line /who",
		"draft hi", "line hi",
		"draft b", "line bye",
		"end",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// expectTyping checks what the session sent since the last check: a
// typing request for each of want ("#ch", "@user", with " stopped").
func expectTyping(t *testing.T, ss *sentStream, want ...string) {
	t.Helper()
	var got []string
	for _, req := range ss.sent {
		ty := req.GetTyping()
		if ty == nil || req.GetClientId() != typingID {
			t.Errorf("sent %v; want only typing, as chatctl's", req)
			continue
		}
		s := "#" + ty.GetChannel()
		if ty.GetRecipient() != "" {
			s = "@" + ty.GetRecipient()
		}
		if ty.GetStopped() {
			s += " stopped"
		}
		got = append(got, s)
	}
	ss.sent = nil
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("sent typing %q; want %q", got, want)
	}
}

// While a message is being typed, the session says where, again every
// typingEvery as the line changes (never sooner in one conversation, as
// chatd would drop it, unless a message was sent there since), and that
// the user stopped when the line is cleared or becomes a command; the
// message ends it itself.
func TestSessionSendsTyping(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	ss := st.connect()
	now := time.Date(2026, 5, 4, 15, 4, 5, 0, time.UTC)
	st.s.now = func() time.Time { return now }
	st.feed(false, welcomeEv("alice", "bob", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "bob", "alice"))
	st.feed(false, messageEv("bob", "", "alice", "psst", "b1")) // [1]
	ss.sent = nil

	st.s.draft("h")
	expectTyping(t, ss, "#general")
	now = now.Add(time.Second)
	st.s.draft("he")
	expectTyping(t, ss)
	now = now.Add(typingEvery)
	st.s.draft("hel")
	expectTyping(t, ss, "#general")
	st.s.draft("")
	expectTyping(t, ss, "#general stopped")
	st.s.draft("/join #go")
	expectTyping(t, ss)
	st.s.draft("/msg bob ")
	expectTyping(t, ss)
	st.s.draft("/msg bob h")
	expectTyping(t, ss, "@bob")
	st.s.entered("/msg bob hi")
	expectTyping(t, ss) // the message says it
	st.s.draft("/reply 1 y")
	expectTyping(t, ss, "@bob") // at once: a message was sent there since
	st.s.draft("/reply 1 yes in #general, rather")
	expectTyping(t, ss)
	st.s.draft("ye")
	expectTyping(t, ss, "@bob stopped") // #general said too recently
	now = now.Add(typingEvery)
	st.s.draft("yes")
	expectTyping(t, ss, "#general")
	st.s.entered("/who")
	expectTyping(t, ss, "#general stopped")
	st.s.draft("//slash")
	expectTyping(t, ss) // too soon
	st.s.entered("//slash")
	expectTyping(t, ss)
	st.s.draft("again")
	expectTyping(t, ss, "#general")

	// Disconnected, nothing is said, nor queued: the next change once
	// back says it. A refusal of chatctl's typing shows nothing.
	st.s.link = nil
	st.s.draft("x")
	ss = st.connect()
	st.s.connectedTyping()
	st.s.draft("xy")
	expectTyping(t, ss, "#general")
	st.printed()
	st.feed(false, rejectedEv(typingID, 9, "you are not in that channel: join it first"))
	if got := st.printed(); got != "" {
		t.Errorf("a refused typing printed %q; want nothing", got)
	}
	if len(st.s.queue) != 0 {
		t.Errorf("queued %v; want no typing queued", st.s.queue)
	}
}

func typingEv(channel, with string, several bool, users ...string) *chatv1.ChatResponse {
	return &chatv1.ChatResponse{Event: &chatv1.ChatResponse_Typing{Typing: &chatv1.TypingState{Channel: channel, With: with, Users: users, Several: several}}}
}

// The prompt says who is typing in the current channel and to the user,
// never the user; a typer's message ends its typing, and a pipe shows
// nothing of it.
func TestPromptShowsWhoIsTyping(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	var prompt string
	st.s.prompt = func(p string) { prompt = p }
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	st.feed(false, channelJoinedEv("go", "alice", 0, "alice"))
	st.s.command("/switch general")
	typing := func(text string) string { return "\x1b[2m(" + text + ")\x1b[22m #general> " }
	for _, tt := range []struct {
		ev   *chatv1.ChatResponse
		want string
	}{
		{typingEv("general", "", false, "alice"), "#general> "},
		{typingEv("general", "", false, "alice", "bob"), typing("bob is typing…")},
		{typingEv("general", "", false, "carol", "bob"), typing("carol and bob are typing…")},
		{typingEv("general", "", false, "carol", "bob", "evil\x1b[2J"), typing(`carol, bob and evil\x1b[2J are typing…`)},
		{messageEv("evil\x1b[2J", "general", "", "hi", "e1"), typing("carol and bob are typing…")},
		{historyEv(messageEv("carol", "general", "", "old", "c0")), typing("carol and bob are typing…")},
		{typingEv("go", "", false, "dave"), typing("carol and bob are typing…")},
		{typingEv("", "dave", false, "dave"), typing("carol and bob are typing…; dave is typing to you…")},
		{messageEv("dave", "", "alice", "psst", "d1"), typing("carol and bob are typing…")},
		{typingEv("", "dave", false, "dave"), typing("carol and bob are typing…; dave is typing to you…")},
		{typingEv("", "", false), typing("carol and bob are typing…")}, // a private typing ended
		{typingEv("general", "", true), typing("several people are typing…")},
		{messageEv("bob", "general", "", "hi", "b1"), typing("several people are typing…")},
		{typingEv("general", "", false), "#general> "},
		{typingEv("general", "", false, "bob"), typing("bob is typing…")},
		{channelLeftEv("general", "alice"), "\x1b[2m(dave is typing…)\x1b[22m #go> "},
		{welcomeEv("alice", "alice"), "#go> "}, // chatd says again who types
	} {
		st.feed(tt.ev.GetHistory(), tt.ev)
		st.s.showPrompt()
		if prompt != tt.want {
			t.Errorf("after %v: prompt %q, want %q", tt.ev, prompt, tt.want)
		}
	}
	if got := st.printed(); strings.Contains(got, "typing") || strings.Contains(got, "does not know") {
		t.Errorf("typing printed lines:\n%s", got)
	}
}
