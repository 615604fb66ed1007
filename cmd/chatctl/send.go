package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

const sendAbout = `send joins the chat as --name, sends TEXT, waits until the server has
delivered it (to #general by default, to --channel, or privately to --to;
the sender gets a copy, which is how send knows) or refused it, then leaves.
It exits 0 once the message is delivered and the session has ended, and
prints the delivered message as join would.

A --channel other than general is entered first (and created if it does not
exist), since only its members may send to it.

To send as a user who is in the chat on another device (your own chatctl
join, say), give that device's key in $CHATD_DEVICE_KEY (or --device-key):
send is then one more device of the user, for one message.

Flags may come before or after TEXT; "--" ends them, for a TEXT that starts
with "-": chatctl send --name bot -- "-1 for that".
`

func runSend(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs, opts := newFlagSet("send")
	name := fs.String("name", "", "the `username` to send as (required)")
	channel := fs.String("channel", "", "send to this `channel` instead of general")
	to := fs.String("to", "", "send privately to this `username`, who must be online")
	var device deviceKey
	device.define(fs)
	if err := parse(fs, opts, args, stdout, "--name NAME [--channel NAME | --to NAME] [flags] TEXT", sendAbout); err != nil {
		return err
	}
	device.load()
	if *name == "" {
		return usageErrorf("send: --name is required; run 'chatctl send --help' for usage")
	}
	if fs.NArg() != 1 {
		// Several words unquoted would be several arguments; say so
		// rather than send some of them.
		return usageErrorf("send: want exactly one TEXT argument, got %d (quote a message with spaces: chatctl send --name bot \"hello there\")", fs.NArg())
	}
	if *channel != "" && *to != "" {
		return usageErrorf("send: --channel and --to cannot both be set: a message goes to a channel or to one user")
	}
	text := fs.Arg(0)
	if err := checkLength(text); err != nil {
		return usageErrorf("send: %v", err)
	}
	*channel = strings.TrimPrefix(*channel, "#")

	// Only the join moves on to the next server (see tryInTurn): once
	// the message may have been sent, it is not sent again anywhere.
	l, welcome, err := newConnector(opts).first(ctx, stderr, &chatv1.Join{Username: *name, DeviceKey: device.key})
	if err != nil {
		return device.explain(err) // explained by joinError
	}
	defer l.close()
	// Ctrl-C cancels ctx and with it the stream: a disconnect.
	stop := context.AfterFunc(ctx, l.close)
	defer stop()
	stream := l.stream
	you := welcome.GetWelcome().GetYou().GetUsername()
	out := newPrinter(opts.output, stdout, stderr)

	var refused error
	if *channel != "" && !sameChannel(*channel, "general") {
		if refused, err = enterChannel(ctx, stream, you, *channel); err != nil {
			return err
		}
	}
	if refused == nil {
		if refused, err = sendAndWait(ctx, stream, out, you, textRequest(text, *channel, *to, newClientID())); err != nil {
			return err
		}
	}

	// Log out properly, so that the others see "logged out" rather than
	// "disconnected", and wait for the server to end the stream.
	sendLeave(stream)
	_ = stream.CloseSend()
	for {
		_, err := stream.Recv()
		if err == io.EOF {
			return refused
		}
		if err != nil {
			return errors.Join(refused, interrupted(ctx, sessionError(err)))
		}
	}
}

// enterChannel joins channel and waits until the server confirms it or
// refuses. err is set if the session ended.
func enterChannel(ctx context.Context, stream chatStream, you, channel string) (refused, err error) {
	id := newClientID()
	_ = stream.Send(joinChannelRequest(channel, id))
	for {
		ev, err := stream.Recv()
		if err != nil {
			return nil, interrupted(ctx, sessionError(err))
		}
		switch e := ev.GetEvent().(type) {
		case *chatv1.ChatResponse_ChannelJoined:
			if e.ChannelJoined.GetUser().GetUsername() == you && sameChannel(e.ChannelJoined.GetChannel(), channel) {
				return nil, nil
			}
		case *chatv1.ChatResponse_Rejected:
			if e.Rejected.GetClientId() == id {
				return fmt.Errorf("cannot enter #%s: %s", sanitize(channel, ""), sanitize(e.Rejected.GetReason(), "")), nil
			}
		}
	}
}

// sendAndWait sends req, a send, and waits until the server delivers it,
// which it prints, or refuses it. err is set if the session ended.
func sendAndWait(ctx context.Context, stream chatStream, out printer, you string, req *chatv1.ChatRequest) (refused, err error) {
	_ = stream.Send(req)
	// Everyone's messages reach us, so the acknowledgement is the message
	// from us with our client_id, not just any with that id.
	for {
		ev, err := stream.Recv()
		if err != nil {
			return nil, interrupted(ctx, sessionError(err))
		}
		switch e := ev.GetEvent().(type) {
		case *chatv1.ChatResponse_Message:
			if e.Message.GetSender() == you && e.Message.GetClientId() == req.GetClientId() && !ev.GetHistory() {
				return nil, out.event(ev, view{you: you})
			}
		case *chatv1.ChatResponse_Rejected:
			if e.Rejected.GetClientId() == req.GetClientId() {
				return fmt.Errorf("message not sent: %s", sanitize(e.Rejected.GetReason(), "")), nil
			}
		}
	}
}

// interrupted replaces err by a plain "interrupted" when ctx was cancelled
// (Ctrl-C), since then the stream failed because we cancelled it.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return err
}
