package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

const sessionHelp = `  /join #name      enter a channel (created if new) and talk there
  /leave [#name]   leave a channel, the current one by default
  /switch #name    talk in another channel you are in
  /channels        list every channel, how many are in it, what is unread
  /msg NAME text   send text to NAME only
  /reply ID|last text  answer a message, in its conversation: ID is the number
                   shown before it on a terminal ([12]) or its id (-o json's),
                   last the last message shown in your current channel
  /who [#name]     list who is online, or who is in a channel you are in
  /history [#name|NAME] [N]  show the last N (20) messages of the current channel,
                   another one, or your private messages with NAME
  /quit            leave the chat and exit
  /help            list these commands
  //text           send "/text" (a message that starts with a slash)
`

// command acts on one line of input: a command or a message to send. It
// reports whether the user asked to quit.
func (s *session) command(line string) (quit bool) {
	if strings.TrimSpace(line) == "" {
		return false // nothing to send; the server would refuse it anyway
	}
	if !strings.HasPrefix(line, "/") || strings.HasPrefix(line, "//") {
		s.say(strings.TrimPrefix(line, "/"))
		return false
	}
	cmd, rest := splitWord(line)
	args := strings.Fields(rest)
	switch cmd {
	case "/quit":
		return true
	case "/help":
		s.note("Type a line and press Enter to send it to the current channel. Commands:\n" + strings.TrimSuffix(sessionHelp, "\n"))
	case "/who":
		s.who(args)
	case "/history":
		s.history(args)
	case "/join":
		if len(args) == 0 {
			s.note("usage: /join #name (" + channelRules + ")")
			return false
		}
		if err := checkChannelName(rest); err != nil {
			s.note(err.Error())
			return false
		}
		s.joinChannel(rest)
	case "/leave", "/part":
		if len(args) > 1 {
			s.note("usage: /leave [#name]")
			return false
		}
		name := s.current
		if len(args) == 1 {
			name = args[0]
		}
		s.leaveChannel(name)
	case "/switch":
		if len(args) != 1 {
			s.note("usage: /switch #name")
			return false
		}
		s.switchChannel(args[0])
	case "/channels", "/list":
		// What was printed is read: marked so first, the counts agree
		// with the screen (chatd answers requests in order).
		s.sendMarks()
		id := newClientID()
		s.order++
		s.listing[id] = listRequest{order: s.order}
		if !s.request(listChannelsRequest(id)) {
			delete(s.listing, id)
		}
	case "/reply":
		s.reply(rest)
	case "/msg":
		to, text := splitWord(rest)
		if to == "" || text == "" {
			s.note("usage: /msg NAME text")
			return false
		}
		if err := checkLength(text); err != nil {
			s.note(err.Error())
			return false
		}
		s.request(textRequest(text, "", to, newClientID()))
	default:
		s.note(fmt.Sprintf("unknown command %s: type /help for the commands, or //text to send a message that starts with a slash", sanitize(cmd, "")))
	}
	return false
}

// maxTextBytes is the server's limit on a message's text (see
// proto/chat/v1/chat.proto). Longer text is refused here: the server would
// refuse it, and past its request size limit it would end the stream.
const maxTextBytes = 4096

// maxChannelName is the server's limit on the length of a channel name, in
// characters (see proto/chat/v1/chat.proto).
const maxChannelName = 32

// channelRules says what a channel name may be, as the server checks it.
const channelRules = `a channel name is 1 to 32 letters, digits, "-", "_" or ".", with one leading "#" ignored`

// checkChannelName refuses a channel name, as typed after /join, that the
// server would refuse, saying what is wrong with it and suggesting one that
// would do. It checks what the server checks first (the characters and the
// length): a person who typed "/join #bad name" learns that spaces are the
// problem, at once and even while disconnected, instead of a bare usage
// line. The server has the last word on the rest (names that are not
// valid Unicode text, say).
func checkChannelName(typed string) error {
	name := strings.TrimPrefix(typed, "#")
	var what string
	switch {
	case name == "":
		return fmt.Errorf("a channel needs a name: /join #name (%s), for example /join #go", channelRules)
	case strings.IndexFunc(name, unicode.IsSpace) >= 0:
		what = "spaces are not allowed in a channel name"
	case utf8.RuneCountInString(name) > maxChannelName:
		what = fmt.Sprintf("a channel name has at most %d characters, and this one has %d", maxChannelName, utf8.RuneCountInString(name))
	default:
		i := strings.IndexFunc(name, func(r rune) bool { return !channelRune(r) })
		if i < 0 {
			return nil
		}
		r, _ := utf8.DecodeRuneInString(name[i:])
		what = fmt.Sprintf("%q is not allowed in a channel name", r)
	}
	example := "#go"
	if good := channelLike(name); good != "" {
		example = "#" + good
	}
	// %q escapes control characters, so what was typed cannot drive the
	// terminal either.
	return fmt.Errorf("cannot join %q: %s (%s); for example: /join %s", typed, what, channelRules, example)
}

// channelRune reports whether a channel name may contain r.
func channelRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.'
}

// channelLike returns a channel name made from name: every run of
// characters a name may not have turned into one "-", and cut to the
// longest name allowed; "" if nothing is left.
func channelLike(name string) string {
	var b strings.Builder
	dash := false
	n := 0
	for _, r := range name {
		if n == maxChannelName {
			break
		}
		if !channelRune(r) {
			dash = b.Len() > 0
			continue
		}
		if dash && n < maxChannelName-1 {
			b.WriteByte('-')
			n++
		}
		dash = false
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// checkLength refuses text the server would not take for its length.
func checkLength(text string) error {
	if n := len(strings.TrimSpace(text)); n > maxTextBytes {
		return fmt.Errorf("message too long: %d bytes, at most %d; not sent", n, maxTextBytes)
	}
	return nil
}

// note shows chatctl's own feedback.
func (s *session) note(msg string) { _ = s.out.note(msg) }

// say sends text to the current channel.
func (s *session) say(text string) {
	if s.current == "" {
		s.note("You are in no channel: /join #name to enter one, or /msg NAME text. Not sent.")
		return
	}
	if err := checkLength(text); err != nil {
		s.note(err.Error())
		return
	}
	s.request(textRequest(text, strings.TrimPrefix(s.current, "#"), "", newClientID()))
}

// who shows who is online, or with a channel's name, who is in it.
func (s *session) who(args []string) {
	switch len(args) {
	case 0:
		_ = s.out.online(s.online, s.you)
	case 1:
		c := s.channel(args[0])
		switch {
		case c == nil && s.isJoining(args[0]):
			s.note(fmt.Sprintf("Still entering %s: try again in a moment.", channelName(strings.TrimPrefix(args[0], "#"))))
			return
		case c == nil:
			s.note(fmt.Sprintf("You are not in %s: /channels shows how many are in each channel.", channelName(strings.TrimPrefix(args[0], "#"))))
			return
		}
		_ = s.out.members(c.name, c.members, s.you)
	default:
		s.note("usage: /who [#name]")
	}
}

// joinChannel enters a channel and makes it current, or just makes it
// current if the session is in it already. Lines typed after it go to the
// new channel at once: the server handles a session's requests in order,
// so they reach it after the join; if the join is refused, the channel
// before it is current again. name has passed checkChannelName.
func (s *session) joinChannel(name string) {
	name = strings.TrimPrefix(name, "#")
	if c := s.channel(name); c != nil {
		s.switchChannel(name)
		return
	}
	id := newClientID()
	s.order++
	s.joining[name] = joinRequest{clientID: id, previous: s.current, order: s.order}
	if !s.request(joinChannelRequest(name, id)) {
		delete(s.joining, name)
		return
	}
	s.current = name
}

// leaveChannel leaves a channel the session is in.
func (s *session) leaveChannel(name string) {
	if name == "" {
		s.note("You are in no channel.")
		return
	}
	c := s.channel(name)
	if c != nil {
		name = c.name
	} else if !s.isJoining(name) {
		s.note(fmt.Sprintf("You are not in %s.", channelName(strings.TrimPrefix(name, "#"))))
		return
	}
	// A leave right after a /join (typed ahead, or from a pipe) reaches the
	// server after the join, which handles a session's requests in order.
	if !s.request(&chatv1.ChatRequest{ClientId: newClientID(), Action: &chatv1.ChatRequest_LeaveChannel{LeaveChannel: &chatv1.LeaveChannel{Channel: strings.TrimPrefix(name, "#")}}}) || c != nil {
		return
	}
	// Should the connection break before the join is answered, it is not
	// to be sent again (see resend).
	for ch, j := range s.joining {
		if sameChannel(ch, name) {
			j.leaving = true
			s.joining[ch] = j
		}
	}
}

// switchChannel makes a channel the session is in, or is entering, current.
func (s *session) switchChannel(name string) {
	if c := s.channel(name); c != nil {
		name = c.name
	} else if !s.isJoining(name) {
		s.note(fmt.Sprintf("You are not in %s: /join it first.", channelName(strings.TrimPrefix(name, "#"))))
		return
	}
	s.current = strings.TrimPrefix(name, "#")
	s.note(fmt.Sprintf("Talking in %s now.", channelName(s.current)))
}

// isJoining reports whether a /join of channel name awaits its answer.
func (s *session) isJoining(name string) bool {
	for ch := range s.joining {
		if sameChannel(ch, name) {
			return true
		}
	}
	return false
}

// splitWord splits the first word off s; rest has no surrounding space.
func splitWord(s string) (word, rest string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
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
