package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// chatctl admin: the chat's admin service, for its admins.

const adminAbout = `admin calls chat.v1.AdminService, for the chat's admins: the token given
(--token, --token-file or $CHATD_TOKEN) is the secret of chatd's
--admin-token-file, or, with sign-in, a token whose admin claim is true.

  chatctl admin sessions                                 who is in the chat, with each device
  chatctl admin kick USER [--reason TEXT]                remove USER; it may join again
  chatctl admin ban USER [--for DURATION] [--reason TEXT] remove USER and refuse its joins (names
                                                         that look like it too) for DURATION (e.g.
                                                         24h), or for good without --for
  chatctl admin unban USER                               end USER's ban
  chatctl admin bans                                     the bans in force
  chatctl admin publish [--channel C | --to USER] [--as BOT] TEXT
                                                         send TEXT as the chat itself ("chatd
                                                         system") or as bot BOT ("BOT (bot)")

With -o json each prints the service's answer as one line of protojson.
`

// adminExitCodes are admin's: it makes no session.
func init() {
	commandExitCodes["admin"] = []int{exitOK, exitFailure, exitUsage, exitUnreachable, exitSignIn}
}

func runAdmin(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs, opts := newFlagSet("admin")
	reason := fs.String("reason", "", "with kick and ban: the `reason`, shown to the user and logged (at most 200 characters)")
	dur := fs.Duration("for", 0, "with ban: how long the ban lasts (`duration`, e.g. 24h); 0 for good")
	channel := fs.String("channel", "", "with publish: the `channel` to send to (general if neither --channel nor --to)")
	to := fs.String("to", "", "with publish: the `user` to send to privately")
	as := fs.String("as", "", "with publish: the `bot` to send as; the chat itself without it")
	if err := parse(fs, opts, args, stdout, "sessions | kick USER | ban USER | unban USER | bans | publish TEXT [flags]", adminAbout); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErrorf("admin: say what to do: sessions, kick, ban, unban or bans; run 'chatctl admin --help' for usage")
	}
	action, rest := fs.Arg(0), fs.Args()[1:]
	wantUser := action == "kick" || action == "ban" || action == "unban"
	switch {
	case !wantUser && action != "sessions" && action != "bans" && action != "publish":
		return usageErrorf("admin: unknown action %q: sessions, kick, ban, unban, bans or publish", action)
	case wantUser && len(rest) != 1:
		return usageErrorf("admin %s: give one USER", action)
	case action == "publish" && len(rest) == 0:
		return usageErrorf("admin publish: give the TEXT to send")
	case action == "publish" && *channel != "" && *to != "":
		return usageErrorf("admin publish: --channel or --to, not both")
	case action != "publish" && (*channel != "" || *to != "" || *as != ""):
		return usageErrorf("admin %s: --channel, --to and --as are for publish", action)
	case !wantUser && action != "publish" && len(rest) > 0:
		return usageErrorf("admin %s: unexpected argument %q", action, rest[0])
	case *reason != "" && action != "kick" && action != "ban":
		return usageErrorf("admin %s: --reason is for kick and ban", action)
	case *dur != 0 && action != "ban":
		return usageErrorf("admin %s: --for is for ban", action)
	case *dur < 0:
		return usageErrorf("admin ban: --for must be positive, or 0 for good")
	}
	call := func(ctx context.Context, c chatv1.AdminServiceClient) (proto.Message, error) {
		switch action {
		case "sessions":
			return c.ListSessions(ctx, &chatv1.ListSessionsRequest{})
		case "kick":
			return c.Kick(ctx, &chatv1.KickRequest{User: rest[0], Reason: *reason})
		case "ban":
			req := &chatv1.BanRequest{User: rest[0], Reason: *reason}
			if *dur > 0 {
				req.Duration = durationpb.New(*dur)
			}
			return c.Ban(ctx, req)
		case "unban":
			return c.Unban(ctx, &chatv1.UnbanRequest{User: rest[0]})
		case "publish":
			return c.Publish(ctx, &chatv1.PublishRequest{Channel: *channel, Recipient: *to, Bot: *as, Text: strings.Join(rest, " ")})
		}
		return c.ListBans(ctx, &chatv1.ListBansRequest{})
	}
	resp, err := callInTurn(ctx, opts, stderr, func(ctx context.Context, conn *grpc.ClientConn) (proto.Message, error) {
		return call(ctx, chatv1.NewAdminServiceClient(conn))
	}, func(err error) error {
		code := status.Code(err)
		err = fmt.Errorf("admin %s: %s", action, status.Convert(err).Message())
		if code == codes.Unauthenticated || code == codes.PermissionDenied {
			return withExitCode(exitSignIn, err)
		}
		return interrupted(ctx, err)
	})
	if err != nil {
		return err
	}
	if opts.output == outputJSON {
		b, err := protojson.Marshal(resp)
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	return printAdmin(stdout, action, rest, resp)
}

// printAdmin shows an admin answer for people. Names and reasons come from
// others: they are escaped, so they cannot drive the terminal.
func printAdmin(w io.Writer, action string, rest []string, resp proto.Message) error {
	switch r := resp.(type) {
	case *chatv1.ListSessionsResponse:
		if len(r.GetUsers()) == 0 {
			_, err := fmt.Fprintln(w, "nobody is in the chat")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tDEVICE\tSTATE\tNODE\tADDRESS\tSINCE")
		for _, u := range r.GetUsers() {
			for i, d := range u.GetDevices() {
				since := ""
				if d.GetSince() != nil {
					since = d.GetSince().AsTime().Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", sanitize(u.GetUser().GetUsername(), " "), i+1, d.GetState(), sanitize(d.GetNode(), " "), d.GetAddress(), since)
			}
		}
		return tw.Flush()
	case *chatv1.ListBansResponse:
		if len(r.GetBans()) == 0 {
			_, err := fmt.Fprintln(w, "nobody is banned")
			return err
		}
		for _, b := range r.GetBans() {
			if _, err := fmt.Fprintln(w, describeBan(b)); err != nil {
				return err
			}
		}
		return nil
	case *chatv1.BanResponse:
		_, err := fmt.Fprintln(w, "banned: "+describeBan(r.GetBan()))
		return err
	case *chatv1.KickResponse:
		_, err := fmt.Fprintf(w, "%s was removed from the chat\n", sanitize(rest[0], " "))
		return err
	case *chatv1.UnbanResponse:
		_, err := fmt.Fprintf(w, "%s is no longer banned\n", sanitize(rest[0], " "))
		return err
	case *chatv1.PublishResponse:
		_, err := fmt.Fprintf(w, "sent: %s\n", sanitize(r.GetMessageId(), " "))
		return err
	}
	return errors.New("admin: an answer of an unknown kind")
}

// describeBan is one line about a ban.
func describeBan(b *chatv1.Ban) string {
	var s strings.Builder
	s.WriteString(sanitize(b.GetUser(), " "))
	if b.GetUntil() != nil {
		s.WriteString(" until " + b.GetUntil().AsTime().Local().Format(time.DateTime))
	} else {
		s.WriteString(" for good")
	}
	s.WriteString(", by " + sanitize(b.GetBy(), " "))
	if b.GetReason() != "" {
		s.WriteString(": " + sanitize(b.GetReason(), " "))
	}
	return s.String()
}
