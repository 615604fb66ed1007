package main

import (
	"context"
	"io"
	"os"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"golang.org/x/term"
)

const joinAbout = `join enters the chat as --name and stays until /quit, Ctrl-C or the end of
input. You start in the channel #general; each line read from standard input
is sent to your current channel, and everything that happens in your
channels, and every private message to you, is printed as it happens. On a
terminal a prompt names your current channel ("#general> "), and what is
printed goes above the line being typed. Ctrl-C logs out; Ctrl-D on an
empty line ends the input, which logs out too. It works in a pipe too:

  printf 'hello\n' | chatctl join --name bot

sends "hello" to #general, prints what the server sends back until the
session ends, and exits 0. Each line is handled once the server has
answered the lines before it, so the output reads in order.

Commands, typed as a line of their own:
` + sessionHelp + `
Entering a channel shows its recent messages, marked [history], between
"-- history of #name --" and "-- end of history --".

On a terminal each message is shown after a number, dimmed ("[12]"), that
/reply takes: "/reply 12 sure" answers that message, in its conversation,
and "/reply last sure" the last one shown in your current channel. A reply
is shown with a quote of what it answers: (re bob: "lunch?"). A message
that names you (@alice) is in bold, with the bell if it is new, and
joining and /channels say how many of your unread messages name you.
While you type a message on a terminal, the others in its conversation
see that you are typing, until you send it or clear the line; and the
prompt shows who else is typing in your current channel, or to you:
"(bob is typing…) #general> ". In a pipe, neither.

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
With several --server addresses, join reconnects to the next server in
turn rather than wait for the one it lost (likely restarting), and goes
round them all until --reconnect-timeout: moving on to another server waits
a moment only, and each new round of the list waits longer, as the backoff
grows. It says "chatctl: connected to ADDR" whenever it connects, and
resumes the session there with its token (another node of a chatd cluster
takes it back: "reconnected: nothing missed"; a chatd of its own starts it
afresh).
If another client takes the session over, join exits without reconnecting.

You may be in the chat on several devices at once (a laptop and a phone,
beside the chat page), each getting everything you get. The first device's
welcome carries a device key; on a terminal join shows, once, the command
for another device ("To join as alice from another device:
CHATD_DEVICE_KEY=... chatctl join --name alice"), and with -o json it is
the welcome's deviceKey. Give it to the other device's join in
$CHATD_DEVICE_KEY, or with --device-key, which shows in ps. With sign-in
no key is needed: a token for the same user is enough.

What join prints is read: it marks each conversation read on chatd up to
the last message printed in it, /history's included (at most once a second
per conversation), so that your other devices stop counting those as
unread; --mark-read=false does not. Joining says what is unread: "N
unread" beside a channel you are in, and the private conversations with
unread messages; /channels counts what is unread in each of your channels.

With -o json, each response from the server is printed as one line of
protojson on stdout, and chatctl's own output (/who, /help, notes) goes to
stderr.
`

func runJoin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	fs, opts := newFlagSet("join")
	name := fs.String("name", "", "the `username` to chat under (required): letters, digits and punctuation, no spaces")
	reconnectTimeout := fs.Duration("reconnect-timeout", 30*time.Second, "when the connection breaks, try to reconnect for this `duration`; 0 to exit at once")
	var device deviceKey
	device.define(fs)
	markRead := fs.Bool("mark-read", true, "mark what is printed as read, so that your other devices stop counting it as unread; --mark-read=false for a session nobody reads, such as a log")
	if err := parse(fs, opts, args, stdout, "--name NAME [flags]", joinAbout); err != nil {
		return err
	}
	device.load()
	if *name == "" {
		return usageErrorf("join: --name is required; run 'chatctl join --help' for usage")
	}
	if fs.NArg() > 0 {
		return usageErrorf("join: unexpected argument %q: type messages on standard input", fs.Arg(0))
	}
	if *reconnectTimeout < 0 {
		return usageErrorf("join: --reconnect-timeout must not be negative, got %s", *reconnectTimeout)
	}

	// Before stdout is the console's: how to join from another device
	// is for a person at a terminal, and the key is a secret, not for a
	// log (-o json has it in the welcome, for a program). A signed-in
	// device needs no key, only a token for the same user.
	showDeviceKey := opts.output == outputText && isTerminal(stdout) && opts.security.tokenFrom == ""

	c := newConnector(opts)
	l, welcome, err := c.first(ctx, stderr, &chatv1.Join{Username: *name, DeviceKey: device.key})
	if err != nil {
		return device.explain(err) // explained by joinError
	}
	// On a terminal, Ctrl-C comes as a key (see keys) and does what SIGINT
	// does.
	ctx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	con, err := openConsole(stdin, stdout, interrupt)
	if err != nil {
		l.close()
		return err
	}
	read := lineReader(func(lines chan<- input, done <-chan struct{}) { readLines(stdin, lines, done) })
	if con != nil {
		// On every way out, and before main prints why.
		defer func() {
			if cerr := con.close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		stdout, read = con, con.readLines
		if isTerminal(stderr) {
			// The same terminal, most likely: what goes there must not
			// break into the line being typed either.
			stderr = con
		}
	}
	out := newPrinter(opts.output, stdout, stderr)
	if tp, ok := out.(*textPrinter); ok && con != nil {
		tp.styled = true // a person reads it, and may /reply to a number
	}
	s := newSession(c, l, out, stderr, *reconnectTimeout)
	if con != nil {
		s.prompt = con.setPrompt
	}
	s.deviceKey, s.keyShown = device.key, device.key
	s.showDeviceKey, s.joinFlags = showDeviceKey, joinFlags(opts)
	s.markRead = *markRead
	s.connected()
	if err := s.handle(welcome); err != nil {
		l.close()
		return err
	}
	return s.run(ctx, read)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
