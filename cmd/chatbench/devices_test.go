package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestDevices runs members on two devices each, over both transports:
// every device is a session that must get every message its member gets,
// once and in order, under its own gap-free seq (the run fails otherwise),
// so a message makes members × devices deliveries. With --channels, a
// member's second device is in its channel without asking.
func TestDevices(t *testing.T) {
	for _, tc := range []struct {
		transport string
		args      []string
		reach     int // sessions each message reaches
	}{
		{"grpc", []string{"--senders", "2", "--baseline=false"}, 20 * 2},
		{"grpc-web", []string{"--senders", "2", "--channels", "2"}, 20 / 2 * 2},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			args := append([]string{"--chatd", chatdBin, "--transport", tc.transport, "--members", "20", "--devices", "2",
				"--rate", "40", "--duration", "1s"}, tc.args...)
			rep, text := runJSON(t, append(args, "--idle-wait", "0s", "--progress", "0")...)
			if !rep.OK || rep.Members != 20 || rep.Devices != 2 || rep.Sessions != 40 {
				t.Errorf("ok %v, members %d, devices %d, sessions %d; want true, 20, 2, 40", rep.OK, rep.Members, rep.Devices, rep.Sessions)
			}
			checkResultReach(t, rep.Chatd, 40, tc.reach)
			if !strings.Contains(text, "20 members on 2 devices each (40 sessions)") {
				t.Errorf("the text report does not say how many devices and sessions")
			}
		})
	}
}

// TestDevicesAreOneUser checks that a member's devices join as that
// member's devices, not as users of their own: a chatd that lets a user
// be on one device only refuses the second, and the run says how to lift
// the limit.
func TestDevicesAreOneUser(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--chatd", chatdBin, "--chatd-arg=--max-devices-per-user=1",
		"--members", "3", "--devices", "2", "--senders", "0", "--baseline=false", "--idle-wait", "0s", "--progress", "0"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--max-devices-per-user of at least --devices") {
		t.Errorf("run = %v; want the second devices refused, with the flag that lets them in\nstdout:\n%s", err, &stdout)
	}
}

// TestDevicesAccounting checks that every device is held to every message
// its member should get: a message one device missed is lost, though the
// member's other device got it.
func TestDevicesAccounting(t *testing.T) {
	t.Parallel()
	// Two members on two devices; member 0 sends three messages.
	first := []*member{newMember(0, 1, 0), newMember(1, 1, 0)}
	ms := append(first, newDevice(first[0], 1), newDevice(first[1], 1))
	ms[0].snd = &sender{}
	ms[0].snd.sent.Store(3)
	for i, m := range ms {
		for n := range uint64(3) {
			if i == 3 && n == 1 {
				continue // member 1's second device misses one
			}
			onMessage(m, string(appendText(nil, 0, n, now())))
		}
	}
	var r result
	r.SendS = 1
	r.account(ms, 1)
	if r.Deliveries != 11 || r.ExpectedDeliveries != 12 || r.Lost != 1 {
		t.Errorf("deliveries %d, expected %d, lost %d; want 11, 12 (3 messages × 4 sessions), 1", r.Deliveries, r.ExpectedDeliveries, r.Lost)
	}
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "1 messages lost") {
		t.Errorf("problems %q, want one about the lost message", r.Problems)
	}
}
