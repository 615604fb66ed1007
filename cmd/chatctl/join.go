package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// leaveGrace is how long Ctrl-C waits for the server to end the session
// after the leave before giving up on it: a logout is nicer for the others
// than a disconnect, but not worth a hang.
const leaveGrace = time.Second

const joinAbout = `join enters the chat as --name and stays until /quit, Ctrl-C or the end of
input. Each line read from standard input is sent as a message; everything
that happens in the chat is printed as it happens. It works in a pipe too:

  printf 'hello\n' | chatctl join --name bot

sends "hello", prints what the server sends back until the session ends, and
exits 0.

Commands, typed as a line of their own:
` + sessionHelp + `
With -o json, each response from the server is printed as one line of
protojson on stdout, and chatctl's own output (/who, /help) goes to stderr.
`

const sessionHelp = `  /who    list who is online
  /quit   leave the chat and exit
  /help   list these commands
  //text  send "/text" (a message that starts with a slash)
`

func runJoin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, opts := newFlagSet("join")
	name := fs.String("name", "", "the `username` to chat under (required): letters, digits and punctuation, no spaces")
	if err := parse(fs, opts, args, stdout, "--name NAME [flags]", joinAbout); err != nil {
		return err
	}
	if *name == "" {
		return usageErrorf("join: --name is required; run 'chatctl join --help' for usage")
	}
	if fs.NArg() > 0 {
		return usageErrorf("join: unexpected argument %q: type messages on standard input", fs.Arg(0))
	}

	conn, err := dial(ctx, opts)
	if err != nil {
		return err
	}
	defer conn.Close()

	// The stream outlives ctx: when Ctrl-C cancels ctx, the session still
	// has to send its leave and wait for the server's goodbye.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stream, welcome, err := joinChat(sctx, chatv1.NewChatServiceClient(conn), *name)
	if err != nil {
		return err
	}
	s := &session{
		stream: stream,
		out:    newPrinter(opts.output, stdout, stderr),
		stderr: stderr,
		you:    welcome.GetWelcome().GetYou().GetUsername(),
		online: slices.Clone(welcome.GetWelcome().GetOnlineUsers()),
		seq:    welcome.GetSeq(),
	}
	if err := s.out.event(welcome); err != nil {
		return err
	}
	return s.run(ctx, stdin, cancel)
}

// session is a joined chat session. Only run's goroutine uses it, so that
// the online list, the printer and the stream's sending side need no lock.
type session struct {
	stream chatStream
	out    printer
	stderr io.Writer
	you    string
	online []*chatv1.User // who is online: the welcome's snapshot plus later joins and leaves
	seq    uint64         // seq of the last broadcast event received
}

// input is one line of standard input, or with err set, the end of it.
type input struct {
	line string
	err  error
}

// run prints events and sends what is typed until the session ends. It
// returns nil when the session ends because the user asked (/quit, end of
// input, Ctrl-C, which cancels ctx), and an error otherwise. cancel ends the
// stream.
func (s *session) run(ctx context.Context, stdin io.Reader, cancel context.CancelFunc) error {
	done := make(chan struct{}) // closed when run returns, to release the helpers
	defer close(done)

	events := make(chan *chatv1.ChatResponse)
	var recvErr error // why the stream ended; set before events is closed
	go func() {
		defer close(events)
		for {
			ev, err := s.stream.Recv()
			if err != nil {
				recvErr = err
				return
			}
			select {
			case events <- ev:
			case <-done:
				return
			}
		}
	}()

	// Reading standard input cannot be interrupted: after run returns, this
	// goroutine ends at the next line or at the end of input. chatctl exits
	// by then anyway.
	lines := make(chan input)
	go readLines(stdin, lines, done)

	var (
		interrupt = ctx.Done()
		grace     <-chan time.Time
		leaving   bool // the user asked to end the session, so its end is no error
		sendOpen  = true
		cancelled bool // we cancelled the stream after the grace period
	)
	// leave asks the server to end the session, as a real logout.
	leave := func() {
		leaving = true
		lines = nil // read no more
		if sendOpen {
			sendLeave(s.stream)
			_ = s.stream.CloseSend()
			sendOpen = false
		}
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return s.ended(recvErr, leaving, cancelled)
			}
			if err := s.handle(ev); err != nil {
				return err
			}
		case in := <-lines:
			if in.err != nil {
				if in.err != io.EOF {
					fmt.Fprintf(s.stderr, "chatctl: reading standard input: %v; leaving\n", in.err)
				}
				// A half-close is a logout once the server has sent what
				// is queued for us, which we keep printing until it ends
				// the stream.
				leaving, lines = true, nil
				_ = s.stream.CloseSend()
				sendOpen = false
				continue
			}
			if quit := s.command(in.line); quit {
				leave()
			}
		case <-interrupt:
			interrupt = nil
			leave()
			grace = time.After(leaveGrace)
		case <-grace:
			cancelled = true
			cancel()
		}
	}
}

// ended turns the end of the stream into run's result.
func (s *session) ended(err error, leaving, cancelled bool) error {
	switch {
	case err == io.EOF && leaving:
		return nil
	case cancelled && status.Code(err) == codes.Canceled:
		fmt.Fprintln(s.stderr, "chatctl: the server did not confirm the leave in time; disconnected")
		return nil
	}
	return sessionError(err)
}

// handle keeps the online list up to date and prints ev.
func (s *session) handle(ev *chatv1.ChatResponse) error {
	if ev.GetSeq() != 0 {
		// The server promises every event exactly once, in order; say so if
		// it breaks that promise rather than silently show a wrong list.
		if ev.GetSeq() != s.seq+1 {
			fmt.Fprintf(s.stderr, "chatctl: warning: events out of order (seq %d after %d); /who may be wrong\n", ev.GetSeq(), s.seq)
		}
		s.seq = ev.GetSeq()
	}
	switch e := ev.GetEvent().(type) {
	case *chatv1.ChatResponse_UserJoined:
		s.online = append(s.online, e.UserJoined.GetUser())
	case *chatv1.ChatResponse_UserLeft:
		name := e.UserLeft.GetUser().GetUsername()
		s.online = slices.DeleteFunc(s.online, func(u *chatv1.User) bool { return u.GetUsername() == name })
	}
	return s.out.event(ev)
}

// command acts on one line of input: a command or a message to send. It
// reports whether the user asked to quit.
func (s *session) command(line string) (quit bool) {
	if strings.TrimSpace(line) == "" {
		return false // nothing to send; the server would refuse it anyway
	}
	if !strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//") {
		sendText(s.stream, strings.TrimPrefix(line, "/"), newClientID())
		return false
	}
	switch cmd := strings.Fields(line)[0]; cmd {
	case "/quit":
		return true
	case "/who":
		_ = s.out.online(s.online, s.you)
	case "/help":
		_ = s.out.note("Type a line and press Enter to send it. Commands:\n" + strings.TrimSuffix(sessionHelp, "\n"))
	default:
		_ = s.out.note(fmt.Sprintf("unknown command %s: type /help for the commands, or //text to send a message that starts with a slash", sanitize(cmd, "")))
	}
	return false
}

// readLines sends each line of r, without its line ending, on lines, then
// the error that ended r (io.EOF at the end of input). It stops early once
// done is closed.
func readLines(r io.Reader, lines chan<- input, done <-chan struct{}) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			// A last line without a newline is still a line.
			select {
			case lines <- input{line: strings.TrimRight(line, "\r\n")}:
			case <-done:
				return
			}
		}
		if err != nil {
			select {
			case lines <- input{err: err}:
			case <-done:
			}
			return
		}
	}
}
