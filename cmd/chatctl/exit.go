package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// Exit codes. They are part of chatctl's interface: scripts and tests tell
// failures apart by them, so never renumber one.
const (
	exitOK          = 0 // success, including a session ended by /quit, end of input or Ctrl-C
	exitFailure     = 1 // any other error
	exitUsage       = 2 // bad flags or arguments
	exitUnreachable = 3 // no connection to chatd: refused, or not made within --dial-timeout; or chatd is shutting down (at every --server)
	exitNameTaken   = 4 // the name is online already (names are unique ignoring case)
	exitInvalidName = 5 // the server refused the name as invalid
	exitConnLost    = 6 // the session ended with an error (server shutdown, too slow, network) and join could not resume it
	exitServerFull  = 7 // the server has as many users as it admits, or as many as it admits from this address, or the user as many devices
	exitSignIn      = 8 // sign-in refused: no token, or an invalid or expired one, or one for another name
)

// exitCodeHelp documents the exit codes for --help, in order.
var exitCodeHelp = []struct {
	code    int
	meaning string
}{
	{exitOK, "success (a session ended by /quit, end of input or Ctrl-C is a success)"},
	{exitFailure, "other error (e.g. a message rejected, a list refused)"},
	{exitUsage, "bad usage: unknown flag, bad flag value, missing or extra argument"},
	{exitUnreachable, "cannot reach chatd (connection refused, or none within --dial-timeout), or it is shutting down; with several --server, none could be used"},
	{exitNameTaken, "the name is taken (names are unique ignoring case)"},
	{exitInvalidName, "the server refused the name as invalid"},
	{exitConnLost, "connection lost (server shutdown, too slow, network) and not regained within --reconnect-timeout, or the session taken over"},
	{exitServerFull, "the server is full, or has as many sessions or joins from this address as it takes, or the user is on as many devices as it allows"},
	{exitSignIn, "sign-in refused: chatd wants a token (--token, --token-file or $" + tokenEnv + ") and got none, an invalid or expired one, or one for another name"},
}

// commandExitCodes lists the exit codes of the commands that cannot return
// them all, so that their --help does not promise what they never do: who
// and channels make no session, so no name is refused, no connection lost
// and no session limit met.
var commandExitCodes = map[string][]int{
	"who":      {exitOK, exitFailure, exitUsage, exitUnreachable, exitSignIn},
	"channels": {exitOK, exitFailure, exitUsage, exitUnreachable, exitSignIn},
}

// printExitCodes documents the exit codes command can return; "" for every
// one.
func printExitCodes(w io.Writer, command string) {
	codes, only := commandExitCodes[command]
	for _, e := range exitCodeHelp {
		if !only || slices.Contains(codes, e.code) {
			fmt.Fprintf(w, "  %d  %s\n", e.code, e.meaning)
		}
	}
}

// errHelp reports that help was asked for and printed; it is not a failure.
var errHelp = errors.New("help requested")

// exitError is an error that ends chatctl with a particular exit code. Its
// message is the wrapped error's.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withExitCode(code int, err error) error {
	return &exitError{code: code, err: err}
}

func usageErrorf(format string, args ...any) error {
	return withExitCode(exitUsage, fmt.Errorf(format, args...))
}
