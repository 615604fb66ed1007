package main

import (
	"context"
	"io"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

const channelsAbout = `channels lists every channel, by name, with how many users online are in it.
With -o json it prints the ListChannelsResponse as one line of protojson.
What you have not read is counted per user: /channels in chatctl join
shows it.
`

func runChannels(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	return runList(ctx, "channels", channelsAbout, "channels", args, stdout, stderr,
		func(ctx context.Context, c chatv1.ChatServiceClient) (*chatv1.ListChannelsResponse, error) {
			return c.ListChannels(ctx, &chatv1.ListChannelsRequest{})
		},
		printer.channels)
}
