// Command chatctl is the command-line client of chatd.
//
//	chatctl join --name alice                  chat interactively, or from a pipe
//	chatctl send --name bot "hello"            send one message and leave
//	chatctl send --name bot --to alice "psst"  send one private message
//	chatctl who                                list who is online
//	chatctl channels                           list the channels
//	chatctl admin ban mallory --for 24h        ban a user (for admins)
//
// Every command takes --server, --dial-timeout and -o/--output; run
// "chatctl --help" for the details and the exit codes, which scripts may rely
// on.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	// SIGINT and SIGTERM cancel ctx; join turns that into a clean leave.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling, so that a
		// second Ctrl-C kills chatctl at once if the leave hangs.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand of chatctl.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands lists the subcommands in the order --help shows them.
var commands = []command{
	{"join", "chat under a name, interactively or from a pipe", runJoin},
	{"send", "join, send one message, wait for it to be delivered, leave", runSend},
	{"who", "list who is online", runWho},
	{"channels", "list the channels and how many are in each", runChannels},
	{"admin", "for the chat's admins: list sessions, kick, ban, unban, list bans", runAdmin},
}

// run runs chatctl with the arguments after the program name and returns the
// process's exit code. It is main without the process: tests call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	code := exitCode(err)
	if err != nil && code != exitOK {
		fmt.Fprintf(stderr, "chatctl: %s\n", printable(err.Error()))
	}
	return code
}

// printable escapes the control characters of an error's message, line by
// line (errors.Join puts one on each): many errors carry a message the
// server wrote, a refusal's, and the server may be hostile.
func printable(msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = sanitize(l, "")
	}
	return strings.Join(lines, "\n")
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErrorf("missing command (join, send, who or channels); run 'chatctl --help' for usage")
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			// "chatctl help join" is "chatctl join --help".
			return dispatch(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
		}
		printUsage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, args[1:], stdin, stdout, stderr)
		}
	}
	return usageErrorf("unknown command %q; run 'chatctl --help' for usage", name)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: chatctl <command> [flags] [arguments]

chatctl is the command-line client of chatd, the real-time chat server.

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s  %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'chatctl <command> --help' for a command's flags. Every command takes:
`)
	fs, _ := newFlagSet("chatctl")
	printFlags(w, fs)
	fmt.Fprint(w, severalServers)
	fmt.Fprint(w, "\nExit codes:\n")
	printExitCodes(w, "")
}

// severalServers explains what chatctl does with several --server
// addresses.
const severalServers = `
With several servers (--server a:50051,b:50051,c:50051, the nodes of a chatd
cluster), chatctl tries them in turn until one answers, moving on from one
it cannot reach (each gets --dial-timeout) or that is shutting down, and
says so on stderr. The turn is in an order chatctl picks at random for each
run, not the order listed: many clients given the same list then spread over
the nodes instead of all trying the first, and the clients of a node that
restarts spread over the others instead of all moving to the same one. When
join's connection breaks, it moves on to the next server in that order and
resumes the session there (see 'chatctl join --help').
`

// exitCode is the one place that maps an error to chatctl's exit code.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	default:
		return exitFailure
	}
}
