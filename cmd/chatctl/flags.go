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
	server      string
	dialTimeout time.Duration
	output      outputFormat
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
	fs.StringVar(&opts.server, "server", "localhost:50051", "chatd's gRPC `address` (host:port)")
	fs.DurationVar(&opts.dialTimeout, "dial-timeout", 5*time.Second, "give up if chatd cannot be reached within this `duration`")
	fs.Var(&opts.output, "output", "output `format`: text (for people) or json (one protojson object per line)")
	fs.Var(&opts.output, "o", "output `format`, short for --output")
	return fs, opts
}

// parse parses a command's arguments. On -h/--help it prints the command's
// help, made of usage and about followed by the flags, to stdout and
// returns errHelp; other problems are usage errors.
func parse(fs *flag.FlagSet, opts *options, args []string, stdout io.Writer, usage, about string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: chatctl %s %s\n\n%s\nFlags:\n", fs.Name(), usage, about)
		printFlags(stdout, fs)
		fmt.Fprint(stdout, "\nExit codes:\n")
		printExitCodes(stdout)
		return errHelp
	}
	if err != nil {
		return usageErrorf("%s: %v; run 'chatctl %s --help' for usage", fs.Name(), err, fs.Name())
	}
	if opts.dialTimeout <= 0 {
		return usageErrorf("%s: --dial-timeout must be positive, got %s", fs.Name(), opts.dialTimeout)
	}
	if err := grpcdial.CheckAddr(opts.server); err != nil {
		// Checked here, before anything is tried: gRPC would read a
		// scheme or a missing port its own way and fail slowly.
		return usageErrorf("%s: bad --server %q: %v; want host:port, e.g. --server %s", fs.Name(), opts.server, err, grpcdial.Example)
	}
	return nil
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
		if f.DefValue != "" && f.DefValue != "0s" && f.Name != "o" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
