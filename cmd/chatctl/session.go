package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chatd/chatd/chatclient"
	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// leaveGrace is how long Ctrl-C waits for the server to end the session
// after the leave before giving up on it: a logout is nicer for the others
// than a disconnect, but not worth a hang.
const leaveGrace = time.Second

// maxQueued is how many requests typed while disconnected are kept to send
// once reconnected; past it, lines are refused with a note.
const maxQueued = 100

// maxTyped is how many lines read ahead run keeps while the server has yet
// to answer the lines before them (see session.awaiting); past it, input is
// not read until they are handled.
const maxTyped = 100

// answerWait is how long run holds a line for the server's answers to the
// lines before it: answers that never come (a chatd older than channels, a
// bug) must not freeze the keyboard. It is far beyond any answer of a chatd
// that is up, which takes a round trip.
const answerWait = 5 * time.Second

// session is a joined chat session, kept across reconnections. Only run's
// goroutine uses it, so that its state, the printer and the stream's
// sending side need no lock.
type session struct {
	out    printer
	stderr io.Writer
	// prompt, if set, shows the prompt before the line being typed: on a
	// terminal, where it says which channel a line goes to.
	prompt           func(string)
	connector        *connector
	reconnectTimeout time.Duration // 0: do not reconnect

	link   *link  // the current connection; nil while reconnecting
	server int    // the server of the current link, or of the one lost while reconnecting
	epoch  int    // how many links the session has had, to date unconfirmed messages
	you    string // the username, as the server recorded it
	token  string // the resume token of the session
	seq    uint64 // seq of the last event received

	online   []*chatv1.User // who is online: the welcome's snapshot plus later joins and leaves
	channels []*channel     // the channels the session is in, in the order it entered them
	// current is the channel plain lines go to; "" for none. It may name
	// a channel the session is entering: "general" at first, one /join
	// asked for, and after an incomplete recovery one it is entering
	// again, since the server handles requests in order. It changes only
	// when the user asks, or with a note that says so.
	current string
	// joining maps the channels /join asked for and the server has not
	// confirmed yet to their requests.
	joining map[string]joinRequest
	// listing holds the /channels requests sent and not answered yet, by
	// client_id.
	listing map[string]listRequest
	// resent holds the client_ids of the joins sent again after the last
	// recovery (see resend): "already in" is their success.
	resent map[string]bool
	// parting maps the client_ids of the channel leaves sent on the
	// current link and not answered yet to their channels.
	parting map[string]string
	// snapshotDue is set from a new session's welcome until its
	// channel_joined for general: the rest of the join's answer.
	snapshotDue bool
	order       int // counts /join and /channels requests, to send them again in order

	historyChannel string // the channel whose history is being shown
	historyLeft    int    // how many of its history messages are still to come

	unconfirmed map[string]unconfirmed // messages sent but not echoed nor rejected yet, by client_id
	queue       []*chatv1.ChatRequest  // requests typed while disconnected

	// deviceKey is the user's device key: the one given, then the last a
	// welcome carried. A resume sends it with the token: should the
	// session have expired, it makes this a device of the user again
	// rather than a join refused the name its other devices hold.
	deviceKey string
	// showDeviceKey says to tell the person how to join from another
	// device when a welcome carries a device key they have not seen:
	// on a terminal, and not signed in (a token is all another device
	// needs then). joinFlags are the flags to repeat there.
	showDeviceKey bool
	joinFlags     string
	keyShown      string // the device key given or last shown

	// markRead says to mark what is printed as read (see read.go).
	markRead  bool
	markEvery time.Duration       // the least time between two marks of one conversation
	markDue   <-chan time.Time    // fires when the marks in unmarked are to be sent; nil if none are waiting
	unmarked  map[string]readMark // by conversation: the last message printed, not marked read yet
	lastRead  map[string]string   // by conversation: the last message read, as far as chatctl knows
	mentions  map[string]uint32   // by conversation: how many unread messages name the user (see countMention)

	ids    *shortIDs         // the numbers of the messages printed (see reply.go)
	lastIn map[string]msgRef // by channel's conversation: the last message printed in it

	// typing is where the user is typing, as last said to chatd; nil
	// if nowhere (see typing.go). typedAt is when it was last said in
	// each conversation, on this link, while chatd would drop it again.
	// typers is who is typing, by conversation, as chatd last said.
	typing  *typingTo
	typedAt map[string]time.Time
	typers  map[string]typers
	now     func() time.Time // the clock typing is timed by
}

// channel is a channel the session is in.
type channel struct {
	name    string         // as the server shows it
	members []*chatv1.User // who is in it, in the order they entered it
}

// joinRequest is a /join not yet answered.
type joinRequest struct {
	clientID string
	previous string // the current channel before it, to go back to if refused
	epoch    int    // the link it was sent on; 0 while queued
	order    int    // when it was asked for, among /join and /channels
	leaving  bool   // a /leave of the channel was sent after it
	rejoin   bool   // sent by chatctl to get back into a channel a restarted chatd forgot
}

// listRequest is a /channels sent and not yet answered.
type listRequest struct {
	epoch int // the link it was sent on
	order int // when it was asked for, among /join and /channels
}

// unconfirmed is a message sent and not yet acknowledged.
type unconfirmed struct {
	text  string
	epoch int // the link it was sent on
}

// newSession returns the session that welcome starts, on l.
func newSession(c *connector, l *link, out printer, stderr io.Writer, reconnectTimeout time.Duration) *session {
	server := 0
	if l != nil {
		server = l.server
	}
	return &session{
		server:           server,
		out:              out,
		stderr:           stderr,
		connector:        c,
		reconnectTimeout: reconnectTimeout,
		link:             l,
		epoch:            1,
		current:          "general",
		joining:          map[string]joinRequest{},
		listing:          map[string]listRequest{},
		resent:           map[string]bool{},
		parting:          map[string]string{},
		unconfirmed:      map[string]unconfirmed{},
		markEvery:        markEvery,
		unmarked:         map[string]readMark{},
		lastRead:         map[string]string{},
		mentions:         map[string]uint32{},
		ids:              newShortIDs(),
		lastIn:           map[string]msgRef{},
		typedAt:          map[string]time.Time{},
		typers:           map[string]typers{},
		now:              time.Now,
	}
}

// input is one line of standard input, or with err set, the end of it;
// with draft set, the line being typed on a terminal, each time it changes
// (see console.readLines).
type input struct {
	line  string
	err   error
	draft bool
}

// received is one response from a stream, or with err set, its end.
type received struct {
	ev  *chatv1.ChatResponse
	err error
}

// lineReader reads input for run: it sends each line on lines, then the end
// of input as an error (io.EOF at the end of input), and stops early once
// done is closed.
type lineReader func(lines chan<- input, done <-chan struct{})

// run prints events and sends what read reads until the session ends,
// reconnecting when the connection breaks. It returns nil when the session
// ends because the user asked (/quit, end of input, Ctrl-C, which cancels
// ctx), and an error otherwise.
func (s *session) run(ctx context.Context, read lineReader) error {
	done := make(chan struct{}) // closed when run returns, to release the helpers
	var helpers sync.WaitGroup
	rctx, stopReconnecting := context.WithCancel(ctx)
	defer func() {
		stopReconnecting()
		if s.link != nil {
			s.link.close()
		}
		close(done)
		helpers.Wait()
	}()

	receive := func(l *link) <-chan received {
		ch := make(chan received)
		helpers.Go(func() {
			for {
				ev, err := l.stream.Recv()
				select {
				case ch <- received{ev, err}:
				case <-done:
					return
				}
				if err != nil {
					return
				}
			}
		})
		return ch
	}
	events := receive(s.link)

	// Reading standard input cannot be interrupted: after run returns, this
	// goroutine ends at the next line or at the end of input. chatctl exits
	// by then anyway.
	lines := make(chan input)
	go read(lines, done)

	var (
		interrupt  = ctx.Done()
		grace      <-chan time.Time
		reconnects chan reconnected // set while reconnecting
		lost       error            // why the connection broke, while reconnecting
		leaving    bool             // the user asked to end the session, so its end is no error
		sendOpen   = true
		cancelled  bool // we cancelled the stream after the grace period
		endOfInput bool // input ended while disconnected: log out once back
		// typed holds the lines read and not handled yet: a line is
		// handled once the server has answered the lines before it, so
		// that what chatctl prints about it (/who, /help, a refusal)
		// comes after what the server sent about them, never inside a
		// history block. Reading goes on meanwhile, so that a terminal
		// keeps echoing what is typed.
		typed   []input
		overdue <-chan time.Time // fires when the first typed line has waited answerWait
		hurry   bool             // overdue fired: handle the next line without waiting
	)
	// closeSend half-closes the stream: a logout once the server has sent
	// what is queued for us, which we keep printing until it ends the
	// stream.
	closeSend := func() {
		leaving = true
		if sendOpen {
			s.sendMarks() // what was printed is read: say so before the end
			_ = s.link.stream.CloseSend()
			sendOpen = false
		}
	}
	// leave asks the server to end the session, as a real logout.
	leave := func() {
		leaving = true
		lines, typed = nil, nil // read no more
		if sendOpen {
			s.sendMarks()
			sendLeave(s.link.stream)
			closeSend()
		}
	}
	// handleInput handles one line, or the end of input. It reports
	// whether run is to return nil: the user quit with no stream to log
	// out on.
	handleInput := func(in input) (done bool) {
		if in.err != nil {
			if in.err != io.EOF {
				fmt.Fprintf(s.stderr, "chatctl: reading standard input: %v; leaving\n", in.err)
			}
			if s.link == nil {
				// Get back to send what was typed, then log out.
				endOfInput = true
				return false
			}
			closeSend()
			return false
		}
		if quit := s.command(in.line); quit {
			if s.link == nil {
				// There is no stream to log out on: the server ends
				// the session after its grace period.
				s.dropQueue()
				return true
			}
			leave()
		}
		return false
	}
	for {
		// Handle the lines whose turn has come (at the top of the loop,
		// since the cases below may continue).
		for len(typed) > 0 {
			if s.awaiting() && !hurry {
				if overdue == nil {
					overdue = time.After(answerWait)
				}
				break
			}
			in := typed[0]
			typed, overdue, hurry = typed[1:], nil, false
			if handleInput(in) {
				return nil
			}
		}
		s.showPrompt()
		readMore := lines
		if len(typed) >= maxTyped {
			readMore = nil
		}
		select {
		case r := <-events:
			if r.err == nil {
				if err := s.handle(r.ev); err != nil {
					return err
				}
				continue
			}
			events = nil
			s.link.close()
			s.link = nil
			if leaving || cancelled || s.reconnectTimeout == 0 || !chatclient.Resumable(r.err) {
				return s.ended(r.err, leaving, cancelled)
			}
			lost = r.err
			s.broke(lost)
			result := make(chan reconnected)
			reconnects = result
			c, deadline, from := s.connector, time.Now().Add(s.reconnectTimeout), s.server
			join := &chatv1.Join{Username: s.you, ResumeToken: s.token, LastSeq: s.seq, DeviceKey: s.deviceKey}
			helpers.Go(func() {
				res := c.reconnect(rctx, deadline, join, from)
				select {
				case result <- res:
				case <-done:
					if res.link != nil {
						res.link.close()
					}
				}
			})
		case res := <-reconnects:
			reconnects = nil
			if res.err != nil {
				s.dropQueue()
				if ctx.Err() != nil {
					return nil // Ctrl-C stopped it
				}
				return reconnectFailed(lost, res.err, s.reconnectTimeout)
			}
			s.link, s.server, s.epoch, sendOpen = res.link, res.link.server, s.epoch+1, true
			s.connectedTyping()
			events = receive(s.link)
			s.connected()
			if err := s.handle(res.welcome); err != nil {
				return err
			}
			s.flush()
			s.marksLater()
			if endOfInput {
				closeSend()
			}
		case in := <-readMore:
			if in.draft {
				s.draft(in.line) // at once: it is about now
				continue
			}
			if in.err == nil {
				s.entered(in.line)
			}
			typed = append(typed, in)
			if in.err != nil {
				lines = nil // nothing follows the end of input
			}
		case <-s.markDue:
			if sendOpen {
				s.sendMarks()
			} else {
				s.markDue = nil // the session is ending: no more requests
			}
		case <-overdue:
			overdue, hurry = nil, true
		case <-interrupt:
			interrupt = nil
			if s.link == nil {
				s.dropQueue()
				return nil
			}
			leave()
			grace = time.After(leaveGrace)
		case <-grace:
			cancelled = true
			if s.link != nil {
				s.link.close()
			}
		}
	}
}

// showPrompt shows, on a terminal, where a line typed now goes, after
// who is typing there (see typingNote), if anyone is.
func (s *session) showPrompt() {
	if s.prompt == nil {
		return
	}
	p := "(no channel)> "
	if s.current != "" {
		// channelName escapes the name, which comes from the server.
		p = channelName(s.current) + "> "
	}
	if note := s.typingNote(); note != "" {
		p = dim("("+note+")") + " " + p
	}
	s.prompt(p)
}

// awaiting reports whether the server has yet to answer what was sent on
// the current link, or to finish the snapshot it started: run handles no
// typed line meanwhile. Every request has an answer (an echo, a
// channel_joined, a channel_left, a channel_list, or a rejection), and a
// history block its announced length; while disconnected there is nothing
// to wait for.
func (s *session) awaiting() bool {
	if s.link == nil {
		return false
	}
	if s.snapshotDue || s.historyLeft > 0 {
		return true
	}
	for _, j := range s.joining {
		if j.epoch == s.epoch {
			return true
		}
	}
	for _, l := range s.listing {
		if l.epoch == s.epoch {
			return true
		}
	}
	for _, u := range s.unconfirmed {
		if u.epoch == s.epoch {
			return true
		}
	}
	return len(s.parting) > 0
}

// dropQueue says that the requests typed while disconnected will not be
// sent, if there are any.
func (s *session) dropQueue() {
	if n := len(s.queue); n > 0 {
		fmt.Fprintf(s.stderr, "chatctl: not connected: %s typed while disconnected not sent\n", plural(n, "request"))
		s.queue = nil
	}
}

// broke says that the connection broke with err and what happens now:
// with several servers, which one was lost and which is tried first.
func (s *session) broke(err error) {
	if c := s.connector; c.several() {
		_ = s.out.note(fmt.Sprintf("chatctl: connection to %s lost (%s); reconnecting for up to %s, trying %s first...",
			c.servers[s.server], reason(err), s.reconnectTimeout, c.servers[(s.server+1)%len(c.servers)]))
	} else {
		_ = s.out.note(fmt.Sprintf("chatctl: connection lost (%s); reconnecting for up to %s...", reason(err), s.reconnectTimeout))
	}
	if n := len(s.unconfirmed); n > 0 {
		_ = s.out.note(fmt.Sprintf("chatctl: %s sent just before that not confirmed yet", plural(n, "message")))
	}
}

// connected says, with several servers, which one the session is on now:
// before its first welcome, and before the welcome of each reconnection.
func (s *session) connected() {
	if c := s.connector; c.several() {
		_ = s.out.note("chatctl: connected to " + c.servers[s.server])
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
	case status.Code(err) == codes.Aborted:
		return withExitCode(exitConnLost, fmt.Errorf("session taken over by another client: %s", reason(err)))
	}
	return sessionError(err)
}

// view is the session's state as the printer needs it.
func (s *session) view() view {
	return view{
		you:      s.you,
		current:  s.current,
		joined:   func(ch string) bool { return s.channel(ch) != nil },
		ids:      s.ids,
		mentions: func(ch string) uint32 { return s.mentions[conversation(ch, "")] },
	}
}

// channel returns the channel the session is in called name, or nil.
func (s *session) channel(name string) *channel {
	for _, c := range s.channels {
		if sameChannel(c.name, name) {
			return c
		}
	}
	return nil
}

// handle applies ev to the session's state and prints it.
func (s *session) handle(ev *chatv1.ChatResponse) error {
	if id := ev.GetRejected().GetClientId(); id == markReadID || id == typingID {
		// A mark or a typing of chatctl's own, refused: a channel left
		// on another device meanwhile, say. Nothing the user asked for,
		// so nothing to show, even in JSON.
		return nil
	}
	welcome := ev.GetWelcome()
	if seq := ev.GetSeq(); seq != 0 {
		// The server promises every event exactly once, in order; say so if
		// it breaks that promise rather than silently show a wrong list. A
		// welcome sets where the count starts.
		if welcome == nil && seq != s.seq+1 {
			fmt.Fprintf(s.stderr, "chatctl: warning: events out of order (seq %d after %d); /who may be wrong\n", seq, s.seq)
		}
		s.seq = seq
	}
	if s.historyLeft > 0 && !ev.GetHistory() && welcome.GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE {
		// Fewer history messages came than announced; a complete recovery
		// goes on with the rest.
		if err := s.endHistory(); err != nil {
			return err
		}
	}
	var notes []string // what chatctl has to say about the event, after it
	switch e := ev.GetEvent().(type) {
	case *chatv1.ChatResponse_Welcome:
		notes = s.welcome(e.Welcome)
	case *chatv1.ChatResponse_UserJoined:
		u := e.UserJoined.GetUser()
		s.online = append(removeUser(s.online, u.GetUsername()), u)
		// A new session is in general from its join; a resumed one is
		// followed by a channel_joined for each of its channels.
		if g := s.channel("general"); g != nil && !e.UserJoined.GetResumed() {
			g.members = append(removeUser(g.members, u.GetUsername()), u)
		}
	case *chatv1.ChatResponse_UserLeft:
		name := e.UserLeft.GetUser().GetUsername()
		s.online = removeUser(s.online, name)
		for _, c := range s.channels {
			c.members = removeUser(c.members, name)
		}
	case *chatv1.ChatResponse_ChannelJoined:
		s.channelJoined(e.ChannelJoined)
	case *chatv1.ChatResponse_ChannelLeft:
		notes = s.channelLeft(e.ChannelLeft)
	case *chatv1.ChatResponse_Message:
		notes = s.confirmed(e.Message)
		if !ev.GetHistory() {
			s.typed(e.Message)
		}
	case *chatv1.ChatResponse_Typing:
		s.typingState(e.Typing)
	case *chatv1.ChatResponse_ChannelList:
		delete(s.listing, e.ChannelList.GetClientId())
	case *chatv1.ChatResponse_Read:
		s.readState(e.Read)
	case *chatv1.ChatResponse_Rejected:
		id := e.Rejected.GetClientId()
		delete(s.listing, id)
		delete(s.parting, id)
		if s.resent[id] {
			delete(s.resent, id)
			if codes.Code(e.Rejected.GetCode()) == codes.FailedPrecondition {
				// "Already in": the join sent again after a recovery
				// had got in the first time, as the replay showed.
				// Nothing to show, even in JSON: it is chatctl's retry,
				// not a request of the user's.
				maps.DeleteFunc(s.joining, func(_ string, j joinRequest) bool { return j.clientID == id })
				return nil
			}
		}
		notes = s.joinRefused(id)
		if u, ok := s.unconfirmed[id]; ok {
			delete(s.unconfirmed, id)
			// The reason alone ("there is no channel #ops") does not say
			// which line it was about, nor that it went nowhere.
			notes = append(notes, fmt.Sprintf("Not sent: %q", u.text))
		}
	}
	if err := s.show(ev); err != nil {
		return err
	}
	s.countMention(ev)
	s.printedMessage(ev)
	if ev.GetHistory() && s.historyLeft > 0 {
		if s.historyLeft--; s.historyLeft == 0 {
			if err := s.endHistory(); err != nil {
				return err
			}
		}
	}
	for _, n := range notes {
		if err := s.out.note(n); err != nil {
			return err
		}
	}
	return nil
}

// welcome applies a welcome: a new session, or the outcome of a
// reconnection. It returns what to tell the user.
func (s *session) welcome(w *chatv1.Welcome) (notes []string) {
	s.you = w.GetYou().GetUsername()
	// A session keeps its token for life: another one is a new session.
	fresh := s.token != "" && w.GetResumeToken() != s.token
	s.token = w.GetResumeToken()
	if key := w.GetDeviceKey(); key != "" {
		s.deviceKey = key
		if s.showDeviceKey && key != s.keyShown {
			// Once, and again only if the key changed: a restarted
			// chatd forgot the old one.
			s.keyShown = key
			notes = append(notes, otherDeviceHint(s.you, key, s.joinFlags))
		}
	}
	if n := unreadNote(w.GetUnreadPrivate()); n != "" {
		notes = append(notes, n)
	}
	// Who is typing now follows, whatever the recovery: typing is not
	// replayed, so what was known may be over.
	clear(s.typers)
	clear(s.resent)
	// Leaves sent on an earlier link are not sent again: the events that
	// follow say whether they happened.
	clear(s.parting)
	// A new session's channel_joined for general follows (a kept one's
	// channels are given back too, but how many is not known).
	s.snapshotDue = w.GetRecovery() == chatv1.Recovery_RECOVERY_UNSPECIFIED || fresh
	if w.GetRecovery() == chatv1.Recovery_RECOVERY_COMPLETE {
		// The state is current, and the missed events follow; answers to
		// requests do not.
		return append(notes, s.resend()...)
	}
	// A fresh snapshot: whatever we knew is stale. The catch-ups that
	// follow say where the user stands in each channel.
	s.forgetReads("")
	s.online = slices.Clone(w.GetOnlineUsers())
	was := s.channels
	s.channels = nil
	s.historyLeft = 0
	if s.epoch > 1 {
		// A join sent before the break and followed by a /leave is done
		// with either way: the channel_joined events that follow say
		// where the session is, and the channel before it is current
		// again. The others are asked again.
		maps.DeleteFunc(s.joining, func(ch string, j joinRequest) bool {
			if j.epoch == 0 || !j.leaving {
				return false
			}
			if s.current != "" && sameChannel(s.current, ch) {
				s.current = j.previous
			}
			return true
		})
		if fresh {
			// The session itself is gone (chatd restarted, or it expired):
			// the new one is in general only. Get back into the other
			// channels first, so that the current channel stays what it
			// was and what was typed meanwhile goes where it was meant to.
			s.rejoin(was)
		}
		notes = append(notes, s.resend()...)
		if len(s.unconfirmed) > 0 {
			var texts []string
			for _, u := range s.unconfirmed {
				texts = append(texts, fmt.Sprintf("%q", sanitize(u.text, "")))
			}
			slices.Sort(texts)
			notes = append(notes, "chatctl: these messages may not have been delivered: "+strings.Join(texts, ", "))
			clear(s.unconfirmed)
		}
	}
	return notes
}

// rejoin enters again the channels of was, in order, but general, which
// every new session is in: the join requests go out before anything typed
// meanwhile, and the server handles a session's requests in order, so lines
// meant for one of them reach it once back in. A join refused is said (see
// joinRefused), and so are the lines it leaves unsent.
func (s *session) rejoin(was []*channel) {
	for _, c := range was {
		if sameChannel(c.name, "general") || s.isJoining(c.name) {
			continue
		}
		id := newClientID()
		s.order++
		s.joining[c.name] = joinRequest{clientID: id, order: s.order, rejoin: true}
		// Should the session turn out to be in it after all, "already in"
		// is this join's success too.
		s.resent[id] = true
		s.send(joinChannelRequest(c.name, id))
	}
}

// resend sends again, on the new link, the /join and /channels requests
// sent on an earlier link and not answered yet, in the order they were
// asked for, and returns what to tell the user. Their answers may have been
// lost with the connection (a rejection and a channel list are not replayed
// on a resume), or the requests themselves: without this, a refused /join
// whose rejection was lost would leave the session talking in a channel it
// is not in, for good. A join that got in the first time is answered
// "already in" (FAILED_PRECONDITION), which handle takes for its success.
// A join followed by a /leave is not sent again: whatever became of the
// two, the channel_joined and channel_left events replayed say so, and the
// channel before it is current again. (After an incomplete recovery the
// welcome drops those joins first.)
func (s *session) resend() (notes []string) {
	type again struct {
		order int
		req   *chatv1.ChatRequest
	}
	var reqs []again
	for ch, j := range s.joining {
		if j.epoch == 0 || j.epoch == s.epoch {
			continue // still queued, or sent on this link
		}
		if j.leaving {
			notes = append(notes, s.joinRefused(j.clientID)...)
			continue
		}
		s.resent[j.clientID] = true
		reqs = append(reqs, again{j.order, joinChannelRequest(ch, j.clientID)})
	}
	for id, l := range s.listing {
		if l.epoch != 0 && l.epoch != s.epoch {
			reqs = append(reqs, again{l.order, listChannelsRequest(id)})
		}
	}
	slices.SortFunc(reqs, func(a, b again) int { return a.order - b.order })
	for _, r := range reqs {
		s.send(r.req)
	}
	return notes
}

// channelJoined applies a channel_joined.
func (s *session) channelJoined(cj *chatv1.ChannelJoined) {
	name := cj.GetChannel()
	if cj.GetUser().GetUsername() != s.you {
		if c := s.channel(name); c != nil {
			c.members = append(removeUser(c.members, cj.GetUser().GetUsername()), cj.GetUser())
		}
		return
	}
	s.snapshotDue = false
	if r := cj.GetRead(); r != nil {
		s.readState(r)
	}
	c := s.channel(name)
	if c == nil {
		c = &channel{}
		s.channels = append(s.channels, c)
	}
	c.name, c.members = name, slices.Clone(cj.GetMembers())
	if n := cj.GetHistoryCount(); n > 0 {
		s.historyChannel, s.historyLeft = name, int(n)
	}
	for ch := range s.joining {
		if sameChannel(ch, name) {
			delete(s.joining, ch)
		}
	}
	if sameChannel(s.current, name) {
		s.current = name // as the server writes it
	}
}

// joinRefused goes back to the channel that was current before a /join
// the server refused, if clientID is that /join's, and returns what to tell
// the user.
func (s *session) joinRefused(clientID string) (notes []string) {
	for ch, j := range s.joining {
		if j.clientID != clientID {
			continue
		}
		delete(s.joining, ch)
		if !sameChannel(s.current, ch) {
			if j.rejoin {
				return []string{fmt.Sprintf("Could not get back into %s.", channelName(ch))}
			}
			return nil // the user has moved on already
		}
		s.current = ""
		if c := s.channel(j.previous); c != nil {
			s.current = c.name
		} else if len(s.channels) > 0 {
			s.current = s.channels[0].name
		}
		switch {
		case j.rejoin && s.current == "":
			return []string{fmt.Sprintf("Could not get back into %s, and you are in no channel: /join #name to enter one, or /msg NAME text.", channelName(ch))}
		case j.rejoin:
			return []string{fmt.Sprintf("Could not get back into %s: talking in %s now.", channelName(ch), channelName(s.current))}
		case s.current == "":
			return []string{"You are in no channel: /join #name to enter one, or /msg NAME text."}
		}
		return []string{fmt.Sprintf("Still talking in %s.", channelName(s.current))}
	}
	return nil
}

// channelLeft applies a channel_left and returns what to tell the user.
func (s *session) channelLeft(cl *chatv1.ChannelLeft) (notes []string) {
	name := cl.GetChannel()
	if cl.GetUser().GetUsername() != s.you {
		if c := s.channel(name); c != nil {
			c.members = removeUser(c.members, cl.GetUser().GetUsername())
		}
		return nil
	}
	s.channels = slices.DeleteFunc(s.channels, func(c *channel) bool { return sameChannel(c.name, name) })
	s.forgetReads(conversation(name, ""))
	delete(s.lastIn, conversation(name, ""))
	delete(s.typers, conversation(name, ""))
	maps.DeleteFunc(s.parting, func(_ string, ch string) bool { return sameChannel(ch, name) })
	if !sameChannel(s.current, name) {
		return nil
	}
	s.current = ""
	if g := s.channel("general"); g != nil {
		s.current = g.name
	} else if len(s.channels) > 0 {
		s.current = s.channels[0].name
	}
	if s.current == "" {
		return []string{"You are in no channel now: /join #name to enter one, or /msg NAME text."}
	}
	return []string{fmt.Sprintf("Talking in %s now.", channelName(s.current))}
}

// confirmed notes that a message of ours, if m is one, was delivered, and
// returns what to tell the user about messages that it shows were not.
func (s *session) confirmed(m *chatv1.Message) (notes []string) {
	if m.GetSender() != s.you {
		return nil
	}
	u, ok := s.unconfirmed[m.GetClientId()]
	if !ok {
		return nil
	}
	delete(s.unconfirmed, m.GetClientId())
	// The server handles a session's requests in order, and a complete
	// recovery replays every event since the break before new ones: so a
	// message sent before the break that is still unconfirmed when one
	// sent after it is confirmed never reached the server.
	var lost []string
	for id, o := range s.unconfirmed {
		if o.epoch < u.epoch {
			lost = append(lost, fmt.Sprintf("%q", sanitize(o.text, "")))
			delete(s.unconfirmed, id)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		notes = append(notes, "chatctl: lost when the connection broke, not delivered: "+strings.Join(lost, ", ")+"; send again if needed")
	}
	return notes
}

// endHistory closes the history being shown.
func (s *session) endHistory() error {
	ch := s.historyChannel
	s.historyChannel, s.historyLeft = "", 0
	return s.out.historyEnd(ch)
}

// request sends req, or queues it while disconnected, saying so. It
// reports false if req is neither sent nor queued.
func (s *session) request(req *chatv1.ChatRequest) bool {
	if s.link == nil {
		if len(s.queue) >= maxQueued {
			_ = s.out.note(fmt.Sprintf("Not connected, and %d requests are waiting already: not sent.", maxQueued))
			return false
		}
		s.queue = append(s.queue, req)
		_ = s.out.note("Not connected: this will be sent once reconnected.")
		return true
	}
	s.send(req)
	return true
}

// send sends req on the current link, noting which link it went on. A
// failed Send means the stream is over; run learns why from Recv.
func (s *session) send(req *chatv1.ChatRequest) {
	id := req.GetClientId()
	switch {
	case req.GetSend() != nil:
		s.unconfirmed[id] = unconfirmed{text: req.GetSend().GetText(), epoch: s.epoch}
	case req.GetJoinChannel() != nil:
		for ch, j := range s.joining {
			if j.clientID == id {
				j.epoch = s.epoch
				s.joining[ch] = j
			}
		}
	case req.GetListChannels() != nil:
		if l, ok := s.listing[id]; ok {
			l.epoch = s.epoch
			s.listing[id] = l
		}
	case req.GetLeaveChannel() != nil:
		s.parting[id] = req.GetLeaveChannel().GetChannel()
	}
	_ = s.link.stream.Send(req)
}

// flush sends the requests typed while disconnected.
func (s *session) flush() {
	if len(s.queue) == 0 {
		return
	}
	_ = s.out.note(fmt.Sprintf("Sending %s typed while disconnected.", plural(len(s.queue), "request")))
	for _, req := range s.queue {
		s.send(req)
	}
	s.queue = nil
}

// removeUser returns users without the one called name.
func removeUser(users []*chatv1.User, name string) []*chatv1.User {
	return slices.DeleteFunc(users, func(u *chatv1.User) bool { return u.GetUsername() == name })
}
