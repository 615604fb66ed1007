package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

const sendAbout = `send joins the chat as --name, sends TEXT, waits until the server has
delivered it (everyone gets it, the sender included, which is how send knows)
or refused it, then leaves. It exits 0 once the message is delivered and the
session has ended, and prints the delivered message as join would.
`

func runSend(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs, opts := newFlagSet("send")
	name := fs.String("name", "", "the `username` to send as (required)")
	if err := parse(fs, opts, args, stdout, "--name NAME [flags] TEXT", sendAbout); err != nil {
		return err
	}
	if *name == "" {
		return usageErrorf("send: --name is required; run 'chatctl send --help' for usage")
	}
	if fs.NArg() != 1 {
		// Flags after TEXT would be taken as more text; say so rather
		// than send something surprising.
		return usageErrorf("send: want exactly one TEXT argument after the flags, got %d (quote a message with spaces)", fs.NArg())
	}
	text := fs.Arg(0)

	conn, err := dial(ctx, opts)
	if err != nil {
		return err
	}
	defer conn.Close()

	// Ctrl-C cancels ctx and with it the stream: a disconnect.
	stream, welcome, err := joinChat(ctx, chatv1.NewChatServiceClient(conn), *name)
	if err != nil {
		return err
	}
	you := welcome.GetWelcome().GetYou().GetUsername()
	id := newClientID()
	sendText(stream, text, id)

	// Every user's messages reach every session, so the acknowledgement is
	// the message from us with our client_id, not just any with that id.
	out := newPrinter(opts.output, stdout, stderr)
	var refused error
wait:
	for {
		ev, err := stream.Recv()
		if err != nil {
			return interrupted(ctx, sessionError(err))
		}
		switch e := ev.GetEvent().(type) {
		case *chatv1.ChatResponse_Message:
			if e.Message.GetSender() == you && e.Message.GetClientId() == id {
				if err := out.event(ev); err != nil {
					return err
				}
				break wait
			}
		case *chatv1.ChatResponse_Rejected:
			if e.Rejected.GetClientId() == id {
				refused = fmt.Errorf("message not sent: %s", e.Rejected.GetReason())
				break wait
			}
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

// interrupted replaces err by a plain "interrupted" when ctx was cancelled
// (Ctrl-C), since then the stream failed because we cancelled it.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return err
}
