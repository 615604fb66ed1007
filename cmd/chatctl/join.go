package main

import (
	"context"
	"io"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

const joinAbout = `join enters the chat as --name and stays until /quit, Ctrl-C or the end of
input. You start in the channel #general; each line read from standard input
is sent to your current channel, and everything that happens in your
channels, and every private message to you, is printed as it happens. It
works in a pipe too:

  printf 'hello\n' | chatctl join --name bot

sends "hello" to #general, prints what the server sends back until the
session ends, and exits 0. Each line is handled once the server has
answered the lines before it, so the output reads in order.

Commands, typed as a line of their own:
` + sessionHelp + `
Entering a channel shows its recent messages, marked [history], between
"-- history of #name --" and "-- end of history --".

If the connection breaks (network failure, chatd restarting, a stream reset
on the way, too slow), join reconnects on its own, with backoff, for up to
--reconnect-timeout, and takes the session back: "reconnected: nothing
missed" then shows the events missed meanwhile, or "reconnected, but some
events were lost" a fresh list of who is online and your channels: join
enters again the channels a restarted chatd forgot, and your current
channel stays current (if one cannot be entered again, join says so and
where lines go now). Lines typed while disconnected are sent once
reconnected, or reported as not sent, and a /join or /channels that the
break left unanswered is asked again.
If another client takes the session over, join exits without reconnecting.

With -o json, each response from the server is printed as one line of
protojson on stdout, and chatctl's own output (/who, /help, notes) goes to
stderr.
`

func runJoin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, opts := newFlagSet("join")
	name := fs.String("name", "", "the `username` to chat under (required): letters, digits and punctuation, no spaces")
	reconnectTimeout := fs.Duration("reconnect-timeout", 30*time.Second, "when the connection breaks, try to reconnect for this `duration`; 0 to exit at once")
	if err := parse(fs, opts, args, stdout, "--name NAME [flags]", joinAbout); err != nil {
		return err
	}
	if *name == "" {
		return usageErrorf("join: --name is required; run 'chatctl join --help' for usage")
	}
	if fs.NArg() > 0 {
		return usageErrorf("join: unexpected argument %q: type messages on standard input", fs.Arg(0))
	}
	if *reconnectTimeout < 0 {
		return usageErrorf("join: --reconnect-timeout must not be negative, got %s", *reconnectTimeout)
	}

	c := &connector{opts: opts}
	l, welcome, err := c.connect(ctx, opts.dialTimeout, &chatv1.Join{Username: *name})
	if err != nil {
		return joinError(err)
	}
	s := newSession(c, l, newPrinter(opts.output, stdout, stderr), stderr, *reconnectTimeout)
	if err := s.handle(welcome); err != nil {
		l.close()
		return err
	}
	return s.run(ctx, stdin)
}
