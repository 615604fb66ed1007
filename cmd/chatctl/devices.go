package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// deviceKeyEnv is the environment variable chatctl takes a device key from
// when --device-key is not given.
const deviceKeyEnv = "CHATD_DEVICE_KEY"

// deviceKey is the device key of the commands that join (join, send): it
// makes the session another device of a user who is in the chat already,
// on another device, instead of being refused the name.
type deviceKey struct {
	key  string
	from string // where the key comes from, for messages: "--device-key" or "$CHATD_DEVICE_KEY"; "" if none
}

// define adds --device-key to fs.
func (d *deviceKey) define(fs *flag.FlagSet) {
	fs.StringVar(&d.key, "device-key", "", "join as another device of --name's user, who is in the chat on another device: that device's `key`, which chatctl join shows on a terminal; without --device-key, $"+deviceKeyEnv+" is used. A key on the command line shows in ps: prefer the environment")
}

// load takes the key from the environment if the flag gives none.
func (d *deviceKey) load() {
	switch {
	case d.key != "":
		d.from = "--device-key"
	default:
		if d.key = strings.TrimSpace(os.Getenv(deviceKeyEnv)); d.key != "" {
			d.from = "$" + deviceKeyEnv
		}
	}
}

// explain adds to a join refused for its name what chatctl knows and the
// server does not say: that the device key given was not taken. A key
// that does not match is as none to chatd, which refuses the name as
// taken, saying to give a device key.
func (d *deviceKey) explain(err error) error {
	var ee *exitError
	if d.from == "" || !errors.As(err, &ee) || ee.code != exitNameTaken {
		return err
	}
	return withExitCode(exitNameTaken, fmt.Errorf("%w; the device key from %s is not this user's (a key lasts while one of the user's devices is online or reconnecting)", err, d.from))
}

// otherDeviceHint is the line that tells a person at a terminal how to
// join as you from another device: the command, with the key in the
// environment, where it does not show in ps. flags are the flags to
// repeat there besides --name (--server, --tls), shell-quoted, each with
// a leading space.
func otherDeviceHint(you, key, flags string) string {
	// you comes from the server: quoted for the shell, then escaped for
	// the terminal.
	return sanitize(fmt.Sprintf("To join as %s from another device: %s=%s chatctl join --name %s%s", you, deviceKeyEnv, shellQuote(key), shellQuote(you), flags), "")
}

// joinFlags are the flags of opts that another device needs to reach the
// same chatd, for otherDeviceHint: --server, if not the default, and
// --tls. A CA file's path and a token are this machine's.
func joinFlags(opts *options) string {
	var b strings.Builder
	if len(opts.server.given) > 0 {
		b.WriteString(" --server " + shellQuote(opts.server.String()))
	}
	if opts.security.tls {
		b.WriteString(" --tls")
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.,:/@+=%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
