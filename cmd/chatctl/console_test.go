package main

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// In raw mode Ctrl-C is a byte: keys turns it into what SIGINT does, and
// into keys that clear the line being typed, and hands on the rest as it
// was, an error after the bytes read with it.
func TestKeysTurnCtrlCIntoAnInterrupt(t *testing.T) {
	t.Parallel()
	interrupts := 0
	k := &keys{r: iotest.DataErrReader(iotest.OneByteReader(strings.NewReader("ab\x03cd\x03"))), interrupt: func() { interrupts++ }}
	got, err := io.ReadAll(k)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ab" + clearLine + "cd" + clearLine; string(got) != want {
		t.Errorf("handed on %q, want %q", got, want)
	}
	if interrupts != 2 {
		t.Errorf("%d interrupts, want 2", interrupts)
	}

	// A read larger than what is pending, and a Ctrl-C in the middle.
	interrupts = 0
	k = &keys{r: iotest.DataErrReader(strings.NewReader("hello\x03world")), interrupt: func() { interrupts++ }}
	buf := make([]byte, 64)
	var all []byte
	for {
		n, err := k.Read(buf)
		all = append(all, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := "hello" + clearLine + "world"; string(all) != want || interrupts != 1 {
		t.Errorf("handed on %q with %d interrupts, want %q with 1", all, interrupts, want)
	}
}

// The prompt names the channel a line goes to, escaped like everything
// else that comes from the server.
func TestPromptNamesTheCurrentChannel(t *testing.T) {
	t.Parallel()
	st := newStateTest(t)
	var prompt string
	st.s.prompt = func(p string) { prompt = p }
	st.feed(false, welcomeEv("alice", "alice"))
	st.feed(false, channelJoinedEv("general", "alice", 0, "alice"))
	for _, tt := range []struct {
		do   func()
		want string
	}{
		{func() {}, "#general> "},
		{func() { st.s.command("/join go") }, "#go> "},
		{func() { st.feed(false, channelJoinedEv("Go", "alice", 0, "alice")) }, "#Go> "},
		{func() { st.s.command("/switch general") }, "#general> "},
		// A name chatd would never give, to check that the prompt is
		// escaped anyway.
		{func() { st.feed(false, channelJoinedEv("evil\x1b]0;owned\x07", "alice", 0, "alice")) }, "#general> "},
		{func() { st.feed(false, channelLeftEv("general", "alice")) }, "#Go> "},
		{func() { st.feed(false, channelLeftEv("Go", "alice")) }, `#evil\x1b]0;owned\x07> `},
		{func() { st.feed(false, channelLeftEv("evil\x1b]0;owned\x07", "alice")) }, "(no channel)> "},
	} {
		tt.do()
		st.s.showPrompt()
		if prompt != tt.want {
			t.Errorf("prompt %q, want %q", prompt, tt.want)
		}
	}
}
