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
