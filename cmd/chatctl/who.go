package main

import (
	"context"
	"fmt"
	"io"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/status"
)

// rpcTimeout bounds the ListUsers call once connected, so that a wedged
// server cannot hang a script.
const rpcTimeout = 10 * time.Second

const whoAbout = `who lists the users online now, in the order they joined, with the time each
joined. With -o json it prints the ListUsersResponse as one line of protojson.
`

func runWho(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs, opts := newFlagSet("who")
	if err := parse(fs, opts, args, stdout, "[flags]", whoAbout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("who: unexpected argument %q", fs.Arg(0))
	}
	conn, err := dial(ctx, opts)
	if err != nil {
		return err
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := chatv1.NewChatServiceClient(conn).ListUsers(ctx, &chatv1.ListUsersRequest{})
	if err != nil {
		return interrupted(ctx, fmt.Errorf("cannot list users: %s", status.Convert(err).Message()))
	}
	return newPrinter(opts.output, stdout, stderr).users(resp)
}
