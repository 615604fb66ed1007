package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// This file is what chatctl does with several --server addresses, the
// nodes of a chatd cluster: it tries them in turn, in an order of its own
// (see inTurn), and moves on to the next when one is unreachable or going
// away, at the first connection and when a session's connection breaks.
//
// Each server gets a connection of its own (grpcdial.Dial, one address),
// closed before the next is tried, rather than one gRPC channel over all of
// them with gRPC's pick_first: that way chatctl knows which server it is
// on, can say so, moves to the next one when the one it is on breaks
// (pick_first would go back to the first of its list that answers, the one
// just restarting included), and keeps grpcdial's prompt "refused"
// instead of one error after every address has failed.

// serverFlag is --server as given: every time it was, so that parse can
// refuse it given twice rather than silently keep the last (someone who
// gives two meant both; they go in one list).
type serverFlag struct {
	given []string
}

// defaultServer is where chatctl looks for chatd without --server.
const defaultServer = "localhost:50051"

func (f *serverFlag) String() string {
	if f == nil || len(f.given) == 0 {
		return defaultServer
	}
	return f.given[len(f.given)-1]
}

func (f *serverFlag) Set(s string) error {
	f.given = append(f.given, s)
	return nil
}

// inTurn returns the order in which a run of chatctl tries servers: a
// random one, fixed for the run. Each server is tried once before any is
// tried again, in this order, going round; so "in turn", but not from the
// first listed: many clients given the same list (a script starting bots, a
// shared config) would all land on its first node, and when that node
// restarted, all move to the second. Shuffled, they spread over the nodes at
// the start and again when one goes away.
func inTurn(servers []string) []string {
	order := slices.Clone(servers)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	return order
}

// movesOn reports whether err, why one server failed, is a failure the
// next server may not share: the server is unreachable (dial's exit code
// 3), or it answered UNAVAILABLE, as a node that is shutting down does.
// Any other refusal (a name taken, a bad name, a server full) comes from
// state the nodes of a cluster share, so every node would answer the same.
func movesOn(err error) bool {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code == exitUnreachable
	}
	return status.Code(err) == codes.Unavailable
}

// serverError is why one of several servers failed. Its message names the
// server, once.
type serverError struct {
	addr string
	err  error
}

func (e *serverError) Error() string {
	// A status's message, without "rpc error: code = ...", escaped: it
	// comes from the server, and goes to a terminal.
	msg := sanitize(reason(e.err), "")
	if strings.Contains(msg, e.addr) {
		return msg // dial's errors name it already
	}
	return e.addr + ": " + msg
}

func (e *serverError) Unwrap() error { return e.err }

// tryInTurn calls attempt with each server of order in turn, from the
// first, until one succeeds, one fails in a way the next would not fix (see
// movesOn), or ctx ends. It says on stderr why it moves on from each server
// it moves on from, and returns the index of the server that succeeded, or
// why the last one tried failed, through explain: after several servers,
// named, and saying that none is left.
func tryInTurn(ctx context.Context, order []string, stderr io.Writer, attempt func(server int) error, explain func(error) error) (int, error) {
	for i, addr := range order {
		err := attempt(i)
		switch {
		case err == nil:
			return i, nil
		case len(order) == 1 || ctx.Err() != nil:
			return i, explain(err)
		case !movesOn(err):
			return i, &serverError{addr, explain(err)}
		case i == len(order)-1:
			return i, fmt.Errorf("%w; no server in --server left to try", &serverError{addr, explain(err)})
		}
		fmt.Fprintf(stderr, "chatctl: %v; trying %s...\n", &serverError{addr, explain(err)}, order[i+1])
	}
	return -1, errors.New("no server to try") // parse makes sure there is one
}

// failures is why a reconnection to several servers gave up: the last
// failure of each server tried (each a *serverError), in the order tried.
// It unwraps to the last one, so that it is retryable, and has its status,
// when that one is.
type failures []error

func (f failures) Error() string {
	msgs := make([]string, len(f))
	for i, err := range f {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (f failures) Unwrap() error { return f[len(f)-1] }
