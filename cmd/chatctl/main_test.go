package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// runCLI runs chatctl in-process and returns its exit code and output.
func runCLI(t *testing.T, ctx context.Context, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{nil, "missing command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"join"}, "--name is required"},
		{[]string{"join", "--name", "bob", "extra"}, `unexpected argument "extra"`},
		{[]string{"join", "--nme", "bob"}, "flag provided but not defined: -nme"},
		{[]string{"join", "--name"}, "flag needs an argument: -name"},
		{[]string{"join", "--name", "bob", "-o", "yaml"}, "must be text or json"},
		{[]string{"who", "--output=xml"}, "must be text or json"},
		{[]string{"who", "--dial-timeout", "soon"}, "invalid value"},
		{[]string{"who", "--dial-timeout", "0s"}, "--dial-timeout must be positive"},
		{[]string{"who", "--server", ""}, `who: bad --server "": it is empty; want host:port, e.g. --server localhost:50051`},
		{[]string{"who", "--server", "localhost"}, `who: bad --server "localhost": it has no port; want host:port, e.g. --server localhost:50051`},
		{[]string{"channels", "--server", "http://localhost:50051"}, `channels: bad --server "http://localhost:50051": it has a scheme (http://)`},
		{[]string{"join", "--name", "bob", "--server", ":50051"}, `join: bad --server ":50051": it has no host; want host:port`},
		{[]string{"send", "--name", "bob", "--server", "localhost:http", "hi"}, `send: bad --server "localhost:http": port "http" is not a number`},
		// Several servers: the bad one named, every command alike.
		{[]string{"who", "--server", "a:1,localhost"}, `who: bad --server "a:1,localhost": address 2 ("localhost"): it has no port; want host:port for each, e.g. --server localhost:50051,localhost:50052`},
		{[]string{"channels", "--server", "a:1,b:2,c:http"}, `channels: bad --server "a:1,b:2,c:http": address 3 ("c:http"): port "http" is not a number`},
		{[]string{"join", "--name", "bob", "--server", "a:1,,b:2"}, `join: bad --server "a:1,,b:2": address 2 is empty (a stray comma?)`},
		{[]string{"send", "--name", "bob", "--server", "a:1,b:2,a:1", "hi"}, `send: bad --server "a:1,b:2,a:1": a:1 is listed twice (addresses 1 and 3)`},
		{[]string{"who", "--server", "a:1 b:2"}, `who: bad --server "a:1 b:2": separate addresses with commas: a:1,b:2`},
		{[]string{"who", "--server", "a:1", "--server", "b:2"}, `who: --server given 2 times; list several servers in one, comma-separated: --server a:1,b:2`},
		{[]string{"who", "everyone"}, `unexpected argument "everyone"`},
		{[]string{"send", "hi"}, "--name is required"},
		{[]string{"send", "--name", "bot"}, "exactly one TEXT argument"},
		{[]string{"send", "hi", "there", "--name", "bot"}, "exactly one TEXT argument, got 2 (quote a message with spaces"},
		{[]string{"send", "--name", "bot", "-1", "for", "that"}, "flag provided but not defined: -1"},
		{[]string{"who", "--server", "localhost:1", "everyone", "-o", "json"}, `unexpected argument "everyone"`},
		{[]string{"send", "--name", "bot", "--channel", "go", "--to", "alice", "hi"}, "--channel and --to cannot both be set"},
		{[]string{"join", "--name", "bob", "--reconnect-timeout", "-1s"}, "--reconnect-timeout must not be negative"},
		{[]string{"channels", "all"}, `unexpected argument "all"`},
		{[]string{"send", "--name", "bot", strings.Repeat("x", 4097)}, "message too long: 4097 bytes, at most 4096; not sent"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, t.Context(), "", tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d (usage)", code, exitUsage)
			}
			if !strings.HasPrefix(stderr, "chatctl: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not say %q", stderr, tt.want)
			}
			if strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string // in stdout
	}{
		{[]string{"--help"}, []string{"Usage: chatctl <command>", "join", "send", "who", "--server", "--dial-timeout", "--output", "Exit codes:"}},
		{[]string{"-h"}, []string{"Usage: chatctl <command>"}},
		{[]string{"help"}, []string{"Usage: chatctl <command>"}},
		{[]string{"help", "send"}, []string{"Usage: chatctl send --name NAME [--channel NAME | --to NAME] [flags] TEXT"}},
		{[]string{"join", "--help"}, []string{"Usage: chatctl join", "--name username", "/quit", "/who", "/join #name", "/leave", "/switch", "/channels", "/msg NAME text", "/reply ID|last text", "--reconnect-timeout duration", "(default 30s)", "default localhost:50051", "Exit codes:"}},
		{[]string{"send", "-h"}, []string{"Usage: chatctl send", "--name username", "--channel channel", "--to username"}},
		{[]string{"who", "--help"}, []string{"Usage: chatctl who", "-o format"}},
		{[]string{"channels", "--help"}, []string{"Usage: chatctl channels", "-o format"}},
		{[]string{"--help"}, []string{"channels  list the channels"}},
		{[]string{"--help"}, []string{"comma-separated (a:50051,b:50051)", "With several servers", "an order chatctl picks at random for each\nrun", "moves on to the next server"}},
		{[]string{"join", "--help"}, []string{"With several --server addresses, join reconnects to the next server", `"chatctl: connected to ADDR"`}},
		{[]string{"join", "--help"}, []string{"--device-key key", "$CHATD_DEVICE_KEY is used", "shows in ps", "several devices"}},
		{[]string{"join", "--help"}, []string{"--mark-read", "(default true)", "What join prints is read"}},
		{[]string{"send", "--help"}, []string{"--device-key key", "$CHATD_DEVICE_KEY"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, t.Context(), "", tt.args...)
			if code != exitOK {
				t.Errorf("exit code %d, want 0", code)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("help does not mention %q:\n%s", w, stdout)
				}
			}
			if stderr != "" {
				t.Errorf("stderr %q, want nothing", stderr)
			}
		})
	}
}

// TestHelpListsEveryExitCode keeps the documentation and the codes in step.
func TestHelpListsEveryExitCode(t *testing.T) {
	t.Parallel()
	_, stdout, _ := runCLI(t, t.Context(), "", "--help")
	for code := exitOK; code <= exitSignIn; code++ {
		if !strings.Contains(stdout, fmt.Sprintf("\n  %d  ", code)) {
			t.Errorf("--help does not document exit code %d", code)
		}
	}
}

// A command's --help lists the exit codes it can return, and no other.
func TestCommandHelpListsItsExitCodes(t *testing.T) {
	t.Parallel()
	all := []int{exitOK, exitFailure, exitUsage, exitUnreachable, exitNameTaken, exitInvalidName, exitConnLost, exitServerFull, exitSignIn}
	for cmd, want := range map[string][]int{
		"join":     all,
		"send":     all,
		"who":      {exitOK, exitFailure, exitUsage, exitUnreachable, exitSignIn},
		"channels": {exitOK, exitFailure, exitUsage, exitUnreachable, exitSignIn},
	} {
		_, stdout, _ := runCLI(t, t.Context(), "", cmd, "--help")
		_, codes, ok := strings.Cut(stdout, "\nExit codes:\n")
		if !ok {
			t.Fatalf("%s --help has no exit codes:\n%s", cmd, stdout)
		}
		var got []int
		for line := range strings.Lines(codes) {
			var code int
			if _, err := fmt.Sscanf(line, "  %d  ", &code); err == nil {
				got = append(got, code)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s --help lists exit codes %v, want %v:\n%s", cmd, got, want, codes)
		}
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{errHelp, exitOK},
		{errors.New("boom"), exitFailure},
		{usageErrorf("bad"), exitUsage},
		{fmt.Errorf("wrapped: %w", withExitCode(exitNameTaken, errors.New("taken"))), exitNameTaken},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
