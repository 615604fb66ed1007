package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	chatv1 "github.com/chatd/chatd/gen/chat/v1"
)

// An admin bans and unbans with the real chatctl against the real chatd:
// the banned user's stream ends and the others see it leave, banned; a
// wrong token is refused with chatctl's sign-in exit code.
func TestChatctlAdmin(t *testing.T) {
	t.Parallel()
	const token = "the-admin-secret-of-this-test-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChatd(t, "--admin-token-file", file)
	alice := &member{name: "alice"}
	alice.connect(t, c.addr)
	mallory := &member{name: "mallory"}
	mallory.connect(t, c.addr)
	alice.until(t, func(ev *chatv1.ChatResponse) bool { return ev.GetUserJoined().GetUser().GetUsername() == "mallory" })

	admin := func(args ...string) (int, string, string) {
		t.Helper()
		p := startEnv(t, []string{"CHATD_TOKEN=" + token}, chatctlBin, append([]string{"admin", "--server", c.addr}, args...)...)
		p.stdin.Close()
		code := p.wait(t)
		return code, p.stdout.String(), p.stderr.String()
	}
	if code, out, errOut := admin("sessions"); code != 0 || !strings.Contains(out, "mallory") || !strings.Contains(out, "online") {
		t.Fatalf("admin sessions: exit %d, %q %q; want alice and mallory listed online", code, out, errOut)
	}
	if code, out, errOut := admin("ban", "mallory", "--for", "1h", "--reason", "spam"); code != 0 || !strings.Contains(out, "banned: mallory until") || !strings.Contains(out, "spam") {
		t.Fatalf("admin ban: exit %d, %q %q", code, out, errOut)
	}
	alice.until(t, func(ev *chatv1.ChatResponse) bool {
		l := ev.GetUserLeft()
		return l.GetUser().GetUsername() == "mallory" && l.GetReason() == chatv1.LeaveReason_LEAVE_REASON_BANNED
	})
	if err := <-mallory.ended; !strings.Contains(err.Error(), "banned") {
		t.Errorf("mallory's stream ended with %v; want the ban", err)
	}
	if code, out, _ := admin("bans", "-o", "json"); code != 0 || !strings.Contains(out, `"user":"mallory"`) {
		t.Errorf("admin bans -o json: exit %d, %q", code, out)
	}
	if code, out, _ := admin("unban", "mallory"); code != 0 || !strings.Contains(out, "no longer banned") {
		t.Errorf("admin unban: exit %d, %q", code, out)
	}
	if code, out, errOut := admin("publish", "--as", "weather", "rain", "at", "5"); code != 0 || !strings.Contains(out, "sent: ") {
		t.Errorf("admin publish: exit %d, %q %q", code, out, errOut)
	}
	alice.until(t, func(ev *chatv1.ChatResponse) bool {
		m := ev.GetMessage()
		return m.GetSender() == "weather (bot)" && m.GetBot() == "weather" && m.GetText() == "rain at 5"
	})
	code, _, errOut := runChatctl(t, "", "admin", "--server", c.addr, "--token", "a guess", "bans")
	if code != 8 || !strings.Contains(errOut, "admin token") {
		t.Errorf("admin bans with a wrong token: exit %d, %q; want 8 and the refusal", code, errOut)
	}
}
