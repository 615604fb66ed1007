package main

import (
	"context"
	"fmt"
	"io"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc/status"
)

const channelsAbout = `channels lists every channel, by name, with how many users online are in it.
With -o json it prints the ListChannelsResponse as one line of protojson.
`

func runChannels(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs, opts := newFlagSet("channels")
	if err := parse(fs, opts, args, stdout, "[flags]", channelsAbout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("channels: unexpected argument %q", fs.Arg(0))
	}
	conn, err := dial(ctx, opts)
	if err != nil {
		return err
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := chatv1.NewChatServiceClient(conn).ListChannels(ctx, &chatv1.ListChannelsRequest{})
	if err != nil {
		return interrupted(ctx, fmt.Errorf("cannot list channels: %s", status.Convert(err).Message()))
	}
	return newPrinter(opts.output, stdout, stderr).channels(resp)
}
