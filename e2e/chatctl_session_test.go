package e2e_test

import (
	"testing"
)

// A /join of a name chatd would refuse says what is wrong with it and
// shows a name that would do, instead of a bare usage line.
func TestChatctlJoinExplainsBadChannelName(t *testing.T) {
	t.Parallel()
	srv := startChatd(t)
	code, stdout, stderr := runChatctl(t, "/join #bad name\n/join #a/b\n/join #bad-name\n", "join", "--name", "alice", "--server", srv.addr)
	if code != exitOK {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		`(?m)^cannot join "#bad name": spaces are not allowed in a channel name \(a channel name is 1 to 32 letters, digits, "-", "_" or "\.", with one leading "#" ignored\); for example: /join #bad-name$`,
		`(?m)^cannot join "#a/b": '/' is not allowed in a channel name \(.*\); for example: /join #a-b$`,
		`(?m)^\d\d:\d\d:\d\d \* you joined #bad-name \(1 member\), your current channel$`,
	} {
		if !matches(want, stdout) {
			t.Errorf("stdout does not match %s:\n%s", want, stdout)
		}
	}
}
