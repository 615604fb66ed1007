package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// printer shows what chatctl receives, in the format --output chose.
type printer interface {
	// event shows one event received on a Chat stream, as seen by the
	// session v describes.
	event(ev *chatv1.ChatResponse, v view) error
	// historyEnd closes the history of channel that a channel_joined
	// announced, once its last history message is shown.
	historyEnd(channel string) error
	// online shows the session's local view of who is online (/who).
	online(users []*chatv1.User, you string) error
	// members shows the session's local view of a channel's members
	// (/who #channel).
	members(channel string, users []*chatv1.User, you string) error
	// users shows a ListUsers answer (chatctl who).
	users(resp *chatv1.ListUsersResponse) error
	// channels shows a ListChannels answer (chatctl channels).
	channels(resp *chatv1.ListChannelsResponse) error
	// note shows feedback from chatctl itself, such as /help.
	note(msg string) error
}

// view is what the text of an event depends on besides the event: the
// session's state once the event is applied. The zero view suits a printer
// outside a session, as in chatctl send.
type view struct {
	you     string               // the session's username
	current string               // the channel plain lines go to, if any
	joined  func(ch string) bool // whether the session is in channel ch; nil for none
	ids     *shortIDs            // the numbers of the messages printed; nil for none
	// mentions says how many unread messages of channel ch name the
	// user; nil for none.
	mentions func(ch string) uint32
}

// in reports whether v's session is in channel ch.
func (v view) in(ch string) bool { return v.joined != nil && v.joined(ch) }

// mentionsIn is how many unread messages of channel ch name the user.
func (v view) mentionsIn(ch string) uint32 {
	if v.mentions == nil {
		return 0
	}
	return v.mentions(ch)
}

// newPrinter returns the printer for format. Output meant for programs goes
// to stdout; in JSON mode chatctl's own notes go to stderr, so that stdout
// holds nothing but the server's responses.
func newPrinter(format outputFormat, stdout, stderr io.Writer) printer {
	if format == outputJSON {
		return &jsonPrinter{w: stdout, notes: &textPrinter{w: stderr, loc: time.Local}}
	}
	return &textPrinter{w: stdout, loc: time.Local}
}

// textPrinter prints for people, one line per event, prefixed with the
// event's time. Everything that comes from other users is escaped (see
// sanitize), so their text cannot drive the terminal.
type textPrinter struct {
	w   io.Writer
	loc *time.Location // time zone of the times shown
	// styled says w is a person's terminal: each message shows its short
	// id, dimmed, for /reply, and one that names the user stands out, in
	// bold, with the terminal's bell if it is new. A pipe gets plain
	// lines, as it always did.
	styled bool
}

// indent starts the continuation lines of a multi-line message, under the
// sender's name.
const indent = "         " // len("15:04:05 ")

func (p *textPrinter) event(ev *chatv1.ChatResponse, v view) error {
	at := p.clock(ev.GetTime())
	var err error
	switch e := ev.GetEvent().(type) {
	case *chatv1.ChatResponse_Welcome:
		err = p.welcome(at, e.Welcome)
	case *chatv1.ChatResponse_UserJoined:
		verb := "joined"
		if e.UserJoined.GetResumed() {
			verb = "reconnected"
		}
		_, err = fmt.Fprintf(p.w, "%s * %s %s\n", at, sanitize(e.UserJoined.GetUser().GetUsername(), ""), verb)
	case *chatv1.ChatResponse_UserLeft:
		_, err = fmt.Fprintf(p.w, "%s * %s left (%s)\n", at, sanitize(e.UserLeft.GetUser().GetUsername(), ""), leaveReason(e.UserLeft.GetReason()))
	case *chatv1.ChatResponse_Message:
		err = p.message(at, ev.GetHistory(), e.Message, v)
	case *chatv1.ChatResponse_Rejected:
		_, err = fmt.Fprintf(p.w, "%s ! %s\n", at, sanitize(e.Rejected.GetReason(), indent))
	case *chatv1.ChatResponse_ChannelJoined:
		err = p.channelJoined(at, e.ChannelJoined, v)
	case *chatv1.ChatResponse_ChannelLeft:
		who := sanitize(e.ChannelLeft.GetUser().GetUsername(), "")
		if e.ChannelLeft.GetUser().GetUsername() == v.you {
			who = "you"
		}
		_, err = fmt.Fprintf(p.w, "%s * %s left %s\n", at, who, channelName(e.ChannelLeft.GetChannel()))
	case *chatv1.ChatResponse_ChannelList:
		err = p.channelList(at, e.ChannelList.GetChannels(), v)
	case *chatv1.ChatResponse_Read:
		// A read mark moved, from this device or another of the
		// user's: what was read here was seen here, and what was read
		// elsewhere was printed here already.
	case *chatv1.ChatResponse_Typing:
		// Who is typing shows on a terminal's prompt (see
		// session.showPrompt), and a line in the scroll-back for each
		// key someone presses would drown the conversation.
	default:
		// A newer server may send events this chatctl predates.
		_, err = fmt.Fprintf(p.w, "%s ? an event this chatctl does not know (try a newer chatctl)\n", at)
	}
	return err
}

// message shows a message: "15:04:05 #go bob: text", marked [history] if
// it was sent before it was shown, with a quote of the message it answers
// if it is a reply; on a terminal, after its short id, and in bold if it
// names the user (with the bell, unless it is history).
func (p *textPrinter) message(at string, history bool, m *chatv1.Message, v view) error {
	var b strings.Builder
	b.WriteString(at + " ")
	if n := v.ids.number(m.GetId()); p.styled && n > 0 {
		b.WriteString(dim(fmt.Sprintf("[%d]", n)) + " ")
	}
	if history {
		b.WriteString("[history] ")
	}
	head, text := messageHead(m), sanitize(m.GetText(), indent)
	highlight := p.styled && m.GetSender() != v.you && mentionsYou(m, v.you)
	if highlight {
		head, text = bold(head), bold(text)
	}
	b.WriteString(head)
	if r := m.GetReplyTo(); r != nil {
		b.WriteString(" " + p.quote(r, v))
	}
	b.WriteString(": " + text)
	if highlight && !history {
		b.WriteString(bell)
	}
	b.WriteString("\n")
	_, err := io.WriteString(p.w, b.String())
	return err
}

// mentionsYou reports whether m names you (@you).
func mentionsYou(m *chatv1.Message, you string) bool {
	// The server lists names as they are shown; names are unique whatever
	// their letter case.
	return you != "" && slices.ContainsFunc(m.GetMentions(), func(n string) bool { return strings.EqualFold(n, you) })
}

// quoteLen is the most characters of a reply's excerpt shown: the server
// sends up to 100, too many to fit beside the reply on one line.
const quoteLen = 40

// quote is the compact quote of the message a reply answers, as the
// server sends it: (re bob: "lunch at noon?"), on one line, and on a
// terminal with the original's short id if it has one, dimmed.
func (p *textPrinter) quote(r *chatv1.ReplyTo, v view) string {
	excerpt := strings.Join(strings.Fields(r.GetExcerpt()), " ")
	if runes := []rune(excerpt); len(runes) > quoteLen {
		excerpt = strings.TrimRight(string(runes[:quoteLen-1]), " …") + "…"
	}
	ref := ""
	if n := v.ids.number(r.GetId()); p.styled && n > 0 {
		ref = fmt.Sprintf("[%d] ", n)
	}
	q := fmt.Sprintf(`(re %s%s: "%s")`, ref, sanitize(r.GetSender(), ""), sanitize(excerpt, ""))
	if p.styled {
		q = dim(q)
	}
	return q
}

// dim shows s faint on a terminal (SGR 2, then 22: normal intensity).
func dim(s string) string { return "\x1b[2m" + s + "\x1b[22m" }

// bold shows s bold on a terminal (SGR 1, then 22).
func bold(s string) string { return "\x1b[1m" + s + "\x1b[22m" }

// bell rings the terminal's bell.
const bell = "\a"

// mentionCount is ", 2 mentioning you" when n > 0, to follow an unread
// count.
func mentionCount(n uint32) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d mentioning you", n)
}

// welcome shows a welcome: a new session's snapshot, or the outcome of a
// reconnection.
func (p *textPrinter) welcome(at string, w *chatv1.Welcome) error {
	you := w.GetYou().GetUsername()
	var err error
	switch w.GetRecovery() {
	case chatv1.Recovery_RECOVERY_COMPLETE:
		// The state from before the break is current: no snapshot.
		_, err = fmt.Fprintf(p.w, "%s * reconnected: nothing missed\n", at)
	case chatv1.Recovery_RECOVERY_INCOMPLETE:
		_, err = fmt.Fprintf(p.w, "%s * reconnected, but some events were lost: state rebuilt\n%s %s\n", at, at, onlineLine(w.GetOnlineUsers(), you))
	default:
		_, err = fmt.Fprintf(p.w, "%s * you joined as %s\n%s %s\n", at, sanitize(you, ""), at, onlineLine(w.GetOnlineUsers(), you))
	}
	return err
}

// channelJoined shows someone entering a channel, or you entering one with
// the start of its history.
func (p *textPrinter) channelJoined(at string, cj *chatv1.ChannelJoined, v view) error {
	ch := channelName(cj.GetChannel())
	if cj.GetUser().GetUsername() != v.you {
		_, err := fmt.Fprintf(p.w, "%s * %s joined %s\n", at, sanitize(cj.GetUser().GetUsername(), ""), ch)
		return err
	}
	line := fmt.Sprintf("%s * you joined %s (%s)", at, ch, plural(len(cj.GetMembers()), "member"))
	if v.current != "" && sameChannel(v.current, cj.GetChannel()) {
		line += ", your current channel"
	}
	if n := cj.GetRead().GetUnread(); n > 0 {
		// Where the user stands, as another device of theirs left it.
		line += fmt.Sprintf(", %d unread", n) + mentionCount(cj.GetRead().GetMentions())
	}
	if n := cj.GetHistoryCount(); n > 0 {
		line += fmt.Sprintf("\n-- history of %s (%s) --", ch, plural(int(n), "message"))
	}
	_, err := fmt.Fprintln(p.w, line)
	return err
}

// channelList shows a channel_list answer with the session's own channels
// marked, and how many messages of each the user has not read, if any.
func (p *textPrinter) channelList(at string, channels []*chatv1.Channel, v view) error {
	if _, err := fmt.Fprintf(p.w, "%s Channels (%d):\n", at, len(channels)); err != nil {
		return err
	}
	// A column for unread counts only if one is shown: most lists have
	// none, and read as they always did.
	unread := slices.ContainsFunc(channels, func(c *chatv1.Channel) bool { return c.GetUnread() > 0 })
	// Every cell ends with a tab, so that each column lines up even
	// where a line has none of it; the padding this leaves at the ends
	// of lines is cut.
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 8, 2, ' ', 0)
	for _, c := range channels {
		mark := ""
		switch {
		case v.current != "" && sameChannel(v.current, c.GetName()):
			mark = "(current)"
		case v.in(c.GetName()):
			mark = "(joined)"
		}
		cells := []string{"  " + channelName(c.GetName()), plural(int(c.GetMemberCount()), "member")}
		if unread {
			n := ""
			if c.GetUnread() > 0 {
				// A channel's entry has no mentions: the session counts
				// them (see session.countMention), never past unread.
				n = fmt.Sprintf("%d unread", c.GetUnread()) + mentionCount(min(v.mentionsIn(c.GetName()), c.GetUnread()))
			}
			cells = append(cells, n)
		}
		cells = append(cells, mark)
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(table.String()) {
		if _, err := fmt.Fprintln(p.w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	return nil
}

func (p *textPrinter) historyEnd(string) error {
	_, err := fmt.Fprintln(p.w, "-- end of history --")
	return err
}

func (p *textPrinter) online(users []*chatv1.User, you string) error {
	_, err := fmt.Fprintln(p.w, onlineLine(users, you))
	return err
}

func (p *textPrinter) members(channel string, users []*chatv1.User, you string) error {
	_, err := fmt.Fprintln(p.w, membersLine(channelName(channel), users, you))
	return err
}

func (p *textPrinter) users(resp *chatv1.ListUsersResponse) error {
	if len(resp.GetUsers()) == 0 {
		_, err := fmt.Fprintln(p.w, "Nobody is online.")
		return err
	}
	tw := tabwriter.NewWriter(p.w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tJOINED")
	for _, u := range resp.GetUsers() {
		joined := "-"
		if u.GetJoinTime() != nil {
			joined = u.GetJoinTime().AsTime().In(p.loc).Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\n", sanitize(u.GetUsername(), ""), joined)
	}
	return tw.Flush()
}

func (p *textPrinter) channels(resp *chatv1.ListChannelsResponse) error {
	if len(resp.GetChannels()) == 0 {
		_, err := fmt.Fprintln(p.w, "No channels.")
		return err
	}
	tw := tabwriter.NewWriter(p.w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tMEMBERS")
	for _, c := range resp.GetChannels() {
		fmt.Fprintf(tw, "%s\t%d\n", channelName(c.GetName()), c.GetMemberCount())
	}
	return tw.Flush()
}

func (p *textPrinter) note(msg string) error {
	_, err := fmt.Fprintln(p.w, msg)
	return err
}

// clock formats an event's time as the time of day.
func (p *textPrinter) clock(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "--:--:--"
	}
	return ts.AsTime().In(p.loc).Format(time.TimeOnly)
}

// onlineLine is "Online (2): alice (you), bob".
func onlineLine(users []*chatv1.User, you string) string {
	return membersLine("Online", users, you)
}

// membersLine is "label (2): alice (you), bob".
func membersLine(label string, users []*chatv1.User, you string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d):", label, len(users))
	for i, u := range users {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" " + sanitize(u.GetUsername(), ""))
		if u.GetUsername() == you {
			b.WriteString(" (you)")
		}
	}
	return b.String()
}

// messageHead is what comes before a message's text: "#go alice" for a
// channel message, "[private] alice -> bob" for a private one, and the bare
// sender for a message from a server that predates channels.
func messageHead(m *chatv1.Message) string {
	sender := sanitize(m.GetSender(), "")
	switch {
	case m.GetRecipient() != "":
		return fmt.Sprintf("[private] %s -> %s", sender, sanitize(m.GetRecipient(), ""))
	case m.GetChannel() != "":
		return channelName(m.GetChannel()) + " " + sender
	}
	return sender
}

// channelName is how a channel is shown: "#go".
func channelName(name string) string {
	return "#" + sanitize(name, "")
}

// plural is "1 member", "2 members".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// leaveReason says why a user left, as in "bob left (logged out)".
func leaveReason(r chatv1.LeaveReason) string {
	switch r {
	case chatv1.LeaveReason_LEAVE_REASON_LOGOUT:
		return "logged out"
	case chatv1.LeaveReason_LEAVE_REASON_DISCONNECTED:
		return "disconnected"
	case chatv1.LeaveReason_LEAVE_REASON_TOO_SLOW:
		return "too slow"
	case chatv1.LeaveReason_LEAVE_REASON_SERVER_SHUTDOWN:
		return "server shutdown"
	}
	return "unknown reason"
}

// sanitize makes text from the network safe to print on a terminal. A
// terminal acts on control characters (ESC starts escape sequences that can
// retitle the window, move the cursor, rewrite what is shown or, on some
// terminals, answer back as typed input), so another user's text must never
// reach it raw. Control characters are shown as Go-style escapes (ESC as
// \x1b, the C1 control CSI as \u009b), as are invalid UTF-8 bytes and the
// invisible bidirectional controls that can make text read differently from
// what it is. A newline is kept, followed by nl so that a multi-line message
// stays indented under its first line; with nl == "" it is escaped too. A
// tab is kept.
func sanitize(s string, nl string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && nl != "":
			b.WriteString("\n" + nl)
		case r == '\t':
			b.WriteRune(r)
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// jsonPrinter prints for programs: each response from the server as one
// line of protojson, and nothing else on stdout.
type jsonPrinter struct {
	w     io.Writer
	notes *textPrinter // where chatctl's own feedback goes
}

func (p *jsonPrinter) event(ev *chatv1.ChatResponse, _ view) error { return p.line(ev) }

// historyEnd prints nothing: each history message says it is one.
func (p *jsonPrinter) historyEnd(string) error { return nil }

func (p *jsonPrinter) users(resp *chatv1.ListUsersResponse) error { return p.line(resp) }

func (p *jsonPrinter) channels(resp *chatv1.ListChannelsResponse) error { return p.line(resp) }

func (p *jsonPrinter) members(channel string, users []*chatv1.User, you string) error {
	return p.notes.members(channel, users, you)
}

func (p *jsonPrinter) online(users []*chatv1.User, you string) error {
	return p.notes.online(users, you)
}

func (p *jsonPrinter) note(msg string) error { return p.notes.note(msg) }

func (p *jsonPrinter) line(m proto.Message) error {
	// protojson never puts a raw newline in its single-line form: newlines
	// in strings are escaped.
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	_, err = p.w.Write(append(b, '\n'))
	return err
}
