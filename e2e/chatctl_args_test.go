package e2e_test

import (
	"strings"
	"testing"
)

// chatctl takes flags after its arguments too, as people type them, and
// "--" ends the flags.
func TestChatctlFlagsAfterArguments(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	for _, tt := range []struct {
		args []string
		want string // the delivered message, as printed
	}{
		{[]string{"send", "hi", "--name", "bot", "--server", srv.addr}, "#general bot: hi"},
		{[]string{"send", "--name", "bot", "--server", srv.addr, "--", "--not-a-flag"}, "#general bot: --not-a-flag"},
	} {
		code, stdout, stderr := runChatctl(t, "", tt.args...)
		if code != exitOK || !matches(clock+tt.want+"\n$", stdout) {
			t.Errorf("chatctl %s: exit code %d, stdout %q, stderr %q; want 0 and %q", strings.Join(tt.args, " "), code, stdout, stderr, tt.want)
		}
	}
}
