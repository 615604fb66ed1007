package main

import (
	"context"
	"fmt"
	"io"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcTimeout bounds a listing call once connected, so that a wedged server
// cannot hang a script.
const rpcTimeout = 10 * time.Second

const whoAbout = `who lists the users online now, in the order they joined, with the time each
joined. With -o json it prints the ListUsersResponse as one line of protojson.
`

func runWho(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	return runList(ctx, "who", whoAbout, "users", args, stdout, stderr,
		func(ctx context.Context, c chatv1.ChatServiceClient) (*chatv1.ListUsersResponse, error) {
			return c.ListUsers(ctx, &chatv1.ListUsersRequest{})
		},
		printer.users)
}

// runList runs a command that makes one listing call and prints its answer:
// who, channels.
func runList[R any](ctx context.Context, name, about, what string, args []string, stdout, stderr io.Writer,
	call func(context.Context, chatv1.ChatServiceClient) (R, error), show func(printer, R) error) error {
	fs, opts := newFlagSet(name)
	if err := parse(fs, opts, args, stdout, "[flags]", about); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	resp, err := callInTurn(ctx, opts, stderr, func(ctx context.Context, conn *grpc.ClientConn) (R, error) {
		return call(ctx, chatv1.NewChatServiceClient(conn))
	}, func(err error) error {
		code := status.Code(err)
		err = fmt.Errorf("cannot list %s: %s", what, status.Convert(err).Message())
		if code == codes.Unauthenticated || code == codes.PermissionDenied {
			return signInError(err)
		}
		return interrupted(ctx, err)
	})
	if err != nil {
		return err
	}
	return show(newPrinter(opts.output, stdout, stderr), resp)
}

// callInTurn makes one call on the first of opts' servers that can be
// reached (see tryInTurn), within rpcTimeout once connected. refused
// words the server's refusal (a gRPC status) for the person; what dial
// says is explained already.
func callInTurn[R any](ctx context.Context, opts *options, stderr io.Writer,
	call func(context.Context, *grpc.ClientConn) (R, error), refused func(error) error) (R, error) {
	order := inTurn(opts.servers)
	var resp R
	_, err := tryInTurn(ctx, order, stderr, func(server int) error {
		conn, err := dial(ctx, order[server], opts.dialTimeout, &opts.security)
		if err != nil {
			return err
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		resp, err = call(cctx, conn)
		return err
	}, func(err error) error {
		if _, ok := status.FromError(err); !ok {
			return err // dial's, already explained
		}
		return refused(err)
	})
	return resp, err
}
