package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

// Flags may follow the arguments, and "--" ends them.
func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		name, out  string
		verbose    bool
		positional []string
	}{
		{[]string{"hi", "--name", "bot"}, "bot", "text", false, []string{"hi"}},
		{[]string{"--name", "bot", "hi"}, "bot", "text", false, []string{"hi"}},
		{[]string{"a", "-o", "json", "b", "--name=x", "c"}, "x", "json", false, []string{"a", "b", "c"}},
		{[]string{"--name", "bot", "--", "--not-a-flag"}, "bot", "text", false, []string{"--not-a-flag"}},
		{[]string{"a", "--", "b", "--name", "x"}, "", "text", false, []string{"a", "b", "--name", "x"}},
		{[]string{"--", "--"}, "", "text", false, []string{"--"}},
		// A "--" that is a flag's value ends nothing.
		{[]string{"--name", "--", "hi", "-o", "json"}, "--", "json", false, []string{"hi"}},
		{[]string{"--verbose", "--", "-o"}, "", "text", true, []string{"-o"}},
		{[]string{"x", "--verbose", "y", "--name", "--", "--", "-z"}, "--", "text", true, []string{"x", "y", "-z"}},
		{[]string{"-", "--name", "x"}, "x", "text", false, []string{"-"}},
		{nil, "", "text", false, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			fs, opts := newFlagSet("test")
			name := fs.String("name", "", "")
			verbose := fs.Bool("verbose", false, "")
			if err := parse(fs, opts, tt.args, io.Discard, "", ""); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if *name != tt.name || string(opts.output) != tt.out || *verbose != tt.verbose {
				t.Errorf("--name %q, -o %q, --verbose %v; want %q, %q, %v", *name, opts.output, *verbose, tt.name, tt.out, tt.verbose)
			}
			if got := fs.Args(); !slices.Equal(got, tt.positional) {
				t.Errorf("arguments %q, want %q", got, tt.positional)
			}
		})
	}
}

// send takes its flags after the text too, and a text that looks like a
// flag after "--".
func TestSendFlagsAfterText(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, tt := range []struct {
		args []string
		want string // the delivered message, as printed
	}{
		{[]string{"send", "hi", "--name", "bot", "--server", ts.addr}, "#general bot: hi"},
		{[]string{"send", "--name", "bot", "--server", ts.addr, "--", "--not-a-flag"}, "#general bot: --not-a-flag"},
	} {
		code, stdout, stderr := runCLI(t, t.Context(), "", tt.args...)
		if code != exitOK || !strings.Contains(stdout, tt.want) {
			t.Errorf("%q: exit code %d, stdout %q, stderr %q; want 0 and %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}
