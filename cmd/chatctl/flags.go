package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chatd/chatd/internal/grpcdial"
)

// options are the flags every command takes.
type options struct {
	server serverFlag // --server as given
	// servers are --server's addresses, in the order given; parse sets
	// them.
	servers     []string
	dialTimeout time.Duration
	output      outputFormat
	security    // --tls, --ca-file, --token, --token-file; see security.go
}

// outputFormat is the value of -o/--output.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }

func (f *outputFormat) Set(s string) error {
	switch outputFormat(s) {
	case outputText, outputJSON:
		*f = outputFormat(s)
		return nil
	}
	return errors.New("must be text or json")
}

// newFlagSet returns a flag set for a command with the common flags already
// defined. The flag set prints nothing itself: parse reports errors and
// prints help, so that help goes to stdout and errors go through run's one
// error path.
func newFlagSet(name string) (*flag.FlagSet, *options) {
	opts := &options{output: outputText}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Var(&opts.server, "server", "chatd's gRPC `address` (host:port), or the addresses of a cluster's\nnodes, comma-separated (a:50051,b:50051): tried in turn, from a random\none, moving on from one unreachable or shutting down")
	fs.DurationVar(&opts.dialTimeout, "dial-timeout", 5*time.Second, "give up on a server that cannot be reached within this `duration`")
	fs.Var(&opts.output, "output", "output `format`: text (for people) or json (one protojson object per line)")
	fs.Var(&opts.output, "o", "output `format`, short for --output")
	opts.security.define(fs)
	return fs, opts
}

// parse parses a command's arguments. On -h/--help it prints the command's
// help, made of usage and about followed by the flags, to stdout and
// returns errHelp; other problems are usage errors.
//
// Flags may come after the arguments too (chatctl send hi --name bot), as
// people type them; "--" ends the flags, for an argument that starts with
// "-". fs.Args() holds the arguments afterwards.
func parse(fs *flag.FlagSet, opts *options, args []string, stdout io.Writer, usage, about string) error {
	err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: chatctl %s %s\n\n%s\nFlags:\n", fs.Name(), usage, about)
		printFlags(stdout, fs)
		fmt.Fprint(stdout, "\nExit codes:\n")
		printExitCodes(stdout, fs.Name())
		return errHelp
	}
	if err != nil {
		return usageErrorf("%s: %v; run 'chatctl %s --help' for usage", fs.Name(), err, fs.Name())
	}
	if opts.dialTimeout <= 0 {
		return usageErrorf("%s: --dial-timeout must be positive, got %s", fs.Name(), opts.dialTimeout)
	}
	if err := opts.security.load(); err != nil {
		return usageErrorf("%s: %v", fs.Name(), err)
	}
	if given := opts.server.given; len(given) > 1 {
		return usageErrorf("%s: --server given %d times; list several servers in one, comma-separated: --server %s", fs.Name(), len(given), strings.Join(given, ","))
	}
	// Checked here, before anything is tried: gRPC would read a scheme or
	// a missing port its own way and fail slowly.
	servers, err := grpcdial.SplitList(opts.server.String())
	switch {
	case err != nil && strings.Contains(opts.server.String(), ","):
		return usageErrorf("%s: bad --server %q: %v; want host:port for each, e.g. --server %s,%s", fs.Name(), opts.server.String(), err, grpcdial.Example, otherExample)
	case err != nil:
		return usageErrorf("%s: bad --server %q: %v; want host:port, e.g. --server %s", fs.Name(), opts.server.String(), err, grpcdial.Example)
	}
	opts.servers = servers
	return nil
}

// otherExample is a second address for the example of a list.
const otherExample = "localhost:50052"

// parseInterleaved parses args into fs's flags wherever they are among the
// arguments. The flag package stops at the first argument that is not a
// flag, so parse from there on again, one argument at a time, until the
// end or a "--". Afterwards fs.Args() holds the arguments, in order.
func parseInterleaved(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if endedByDashes(fs, args[:len(args)-len(rest)]) {
			positional = append(positional, rest...)
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	// A leading "--" makes fs.Args() exactly these, and sets no flag.
	return fs.Parse(append([]string{"--"}, positional...))
}

// endedByDashes reports whether the flag package, having consumed these
// arguments in one Parse, stopped at a "--" that ends the flags rather than
// at an argument. It walks them as the flag package does, since a "--"
// may also be a flag's value (--name --).
func endedByDashes(fs *flag.FlagSet, consumed []string) bool {
	for i := 0; i < len(consumed); i++ {
		a := consumed[i]
		if a == "--" {
			return true
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue // -name=value
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // cannot be: Parse fails on an unknown flag
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue // a bool flag takes no value
		}
		i++ // the flag's value, whatever it looks like
	}
	return false
}

// printFlags lists fs's flags GNU-style (--name), which the flag package
// accepts as well as -name, with one-letter flags as -x.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		arg, help := flag.UnquoteUsage(f)
		line := "  " + dash + f.Name
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(help, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "0s" && f.DefValue != "false" && f.Name != "o" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
