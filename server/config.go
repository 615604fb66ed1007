package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/chatd/chatd/internal/admission"
)

// Config holds every limit of the chat service. Start from [DefaultConfig]
// and change what you need; [New] rejects values that make no sense.
type Config struct {
	// MaxSessions is how many sessions there may be at once: users online
	// and sessions kept for a resume. Joins past it are refused with
	// RESOURCE_EXHAUSTED.
	MaxSessions int
	// JoinTimeout is how long a new stream may take to send its join before
	// it is ended with DEADLINE_EXCEEDED.
	JoinTimeout time.Duration
	// QueueSize is how many events may wait for one stream's writer. A
	// client that falls this far behind is disconnected as too slow.
	QueueSize int
	// QueueBytes bounds the same queue by what its events take in memory,
	// so that a client that stops reading cannot make the server hold
	// QueueSize long messages for it.
	QueueBytes int
	// MessageRate is how many messages per second one session may send on
	// average; 0 turns rate limiting off.
	MessageRate float64
	// MessageBurst is how many messages one session may send at once before
	// MessageRate applies.
	MessageBurst int
	// HistorySize is how many of its last messages each channel keeps and
	// shows to whoever joins it; 0 keeps none.
	HistorySize int
	// HistoryBytes bounds the same history by what its messages take in
	// memory, so that long messages cannot make every channel keep
	// HistorySize of them.
	HistoryBytes int
	// MaxChannels is how many channels the server keeps. When it has that
	// many, creating one drops the one that has been empty the longest; if
	// none is empty, creating one is refused with RESOURCE_EXHAUSTED.
	MaxChannels int
	// MaxChannelsPerUser is how many channels one user may be in at once.
	MaxChannelsPerUser int
	// MaxDevicesPerUser is how many sessions one user may have at once (a
	// laptop and a phone are two), counting those reconnecting.
	MaxDevicesPerUser int
	// OfflineInbox is how many private messages the chat keeps for one
	// user while it is offline, with sign-in (without it, a private message
	// to someone offline is refused), and OfflineInboxBytes what they may
	// take in memory. Past either, such a message is refused with
	// RESOURCE_EXHAUSTED.
	OfflineInbox      int
	OfflineInboxBytes int
	// ResumeGrace is how long a session whose stream ended without a logout
	// is kept for a resume; its username is held for it meanwhile. 0 ends
	// such a session at once; a resume token still takes a session back
	// from its own stream while that stream is attached (half-dead).
	ResumeGrace time.Duration
	// ResumeBuffer is how many of its last events each session keeps for a
	// resume. A client that missed more gets a fresh catch-up instead
	// (RECOVERY_INCOMPLETE).
	ResumeBuffer int
	// ResumeBufferBytes bounds the same replay by the encoded size of the
	// events it keeps, so that big messages cannot make every session
	// hold ResumeBuffer of them.
	ResumeBufferBytes int
	// MaxRecvMsgSize is the largest request, in bytes, the server accepts.
	MaxRecvMsgSize int
	// MaxHeaderBytes bounds the metadata of one request (HTTP/2's header
	// list, as decoded): chatd needs a few KiB at most, and every stream
	// keeps its metadata while it lives.
	MaxHeaderBytes int
	// MaxStreamsPerConn is how many streams one HTTP/2 connection may have
	// open at once.
	MaxStreamsPerConn int
	// MaxUnjoined is how many streams, from all clients together, may be
	// waiting for their join at once. Past it, a stream from an address
	// with none waiting takes the place of the oldest waiting stream of
	// the address that has the most, which ends with RESOURCE_EXHAUSTED;
	// others are refused with RESOURCE_EXHAUSTED unless their address
	// holds fewer (see admission.WaitingRoom).
	MaxUnjoined int
	// PerClient is what one client address may have and do; see
	// [ClientLimits].
	PerClient ClientLimits
	// RefusalRate is how many refused requests per second a session may
	// make on average, RefusalBurst how many at once; a session past that
	// is ended with RESOURCE_EXHAUSTED. 0 turns the limit off.
	RefusalRate  float64
	RefusalBurst int
	// WriteDelay is how long a stream's writer waits, after sending the
	// client several events at once, before it sends again: a client
	// receiving a burst (a join storm, a busy channel) then gets the
	// burst's next events together, in fewer writes and system calls, at
	// up to WriteDelay more latency. A client receiving one event at a
	// time never waits. 0 sends everything at once.
	WriteDelay time.Duration
	// KeepaliveTime is how long a connection may be idle before the server
	// pings it to check that the peer is still there.
	KeepaliveTime time.Duration
	// KeepaliveTimeout is how long the server waits for the answer to a ping
	// before it closes the connection and ends its sessions.
	KeepaliveTimeout time.Duration
	// KeepaliveMinClientPing is the shortest interval at which clients may
	// ping the server; clients that ping more often are disconnected.
	KeepaliveMinClientPing time.Duration
}

// ClientLimits is what one client address may have and do
// ([Config.PerClient]):
//   - MaxConns: TCP connections open on the listeners the server's
//     [Limiter] counts ([Server.Serve]'s, and a front's that uses
//     Limiter.Listen); a trusted proxy's are not counted;
//   - MaxUnjoined: streams that have not sent their join yet;
//   - MaxSessions: sessions, counting those held for a resume;
//   - JoinRate and JoinBurst: joins and resumes per second on average, and
//     at once;
//   - ListRate and ListBurst: ListUsers, ListChannels and History calls,
//     likewise;
//   - RefusalRate and RefusalBurst: calls refused before any session,
//     likewise; past them the address is shut out for a second: the
//     connection a refusal comes on is closed, and its new connections
//     are not served until the shut-out ends;
//   - TrustedProxies: the reverse proxies whose X-Forwarded-For is
//     believed, so that what they forward counts against the address they
//     say it comes from.
//
// A zero limit or rate turns that limit off. What counts them is the
// server's [Limiter]. (ClientLimits is chatd's internal admission.Config,
// under this package's name.)
type ClientLimits = admission.Config

// MaxWriteDelay is the longest WriteDelay: past it a busy chat would feel
// slow.
const MaxWriteDelay = time.Second

// Limits on what a client may send. They are part of the API contract (see
// proto/chat/v1/chat.proto), so they are constants, not settings.
const (
	// MaxUsernameLength is the longest username, in characters.
	MaxUsernameLength = 32
	// MaxTextBytes is the longest message text, in bytes, after trimming.
	MaxTextBytes = 4096
	// MaxClientIDBytes is the longest client_id, in bytes.
	MaxClientIDBytes = 64
	// MaxChannelNameLength is the longest channel name, in characters.
	MaxChannelNameLength = 32
)

// DefaultConfig returns the limits chatd runs with unless told otherwise.
// The keepalive defaults follow socket.io's ping interval and timeout
// (25 s and 20 s), so a vanished peer is gone within about 45 seconds.
func DefaultConfig() Config {
	return Config{
		MaxSessions:        10000,
		JoinTimeout:        10 * time.Second,
		QueueSize:          1024,
		QueueBytes:         1 << 20,
		MessageRate:        10,
		MessageBurst:       20,
		HistorySize:        100,
		HistoryBytes:       128 << 10,
		MaxChannels:        1000,
		MaxChannelsPerUser: 100,
		MaxDevicesPerUser:  10,
		OfflineInbox:       100,
		OfflineInboxBytes:  64 << 10,
		ResumeGrace:        30 * time.Second,
		WriteDelay:         20 * time.Millisecond,
		ResumeBuffer:       1024,
		ResumeBufferBytes:  256 << 10,
		MaxRecvMsgSize:     16 << 10,
		MaxHeaderBytes:     16 << 10,
		MaxStreamsPerConn:  100,
		MaxUnjoined:        1000,
		PerClient: ClientLimits{
			MaxConns:    100,
			MaxUnjoined: 16,
			MaxSessions: 100,
			JoinRate:    5,
			JoinBurst:   50,
			ListRate:    5,
			ListBurst:   20,
			// Far above what honest clients are refused (a NAT's hundred
			// users all reconnecting at once are refused about 50 joins
			// a second), far below what a flood of refusals is (tens of
			// thousands a second); see admission.ShutOutFor.
			RefusalRate:  100,
			RefusalBurst: 1000,
		},
		RefusalRate:            10,
		RefusalBurst:           100,
		KeepaliveTime:          25 * time.Second,
		KeepaliveTimeout:       20 * time.Second,
		KeepaliveMinClientPing: 10 * time.Second,
	}
}

// Minimums of the settings that must leave room for what a client may
// send.
const (
	// MinRecvMsgSize is the least MaxRecvMsgSize: a request must be able
	// to carry the longest message text with its client_id and framing.
	MinRecvMsgSize = MaxTextBytes + MaxClientIDBytes + 64
	// MinQueueBytes is the least QueueBytes: a queue must hold the longest
	// message twice over, or its recipients are dropped by it.
	MinQueueBytes = 2 * (MaxTextBytes + 1024)
	// MinHeaderBytes is the least MaxHeaderBytes: room for gRPC's own
	// headers and a resume token, with a proxy's additions.
	MinHeaderBytes = 4096
	// MinKeepaliveTime is the least KeepaliveTime, gRPC's own minimum.
	MinKeepaliveTime = time.Second
)

// A SettingError is a setting of a [Config] that cannot work.
// [Config.Validate] reports one for each such setting. It names the
// setting by its field, so that a program can show the setting as its
// users know it (a flag, say) with [SettingError.Describe].
type SettingError struct {
	// Field is the setting's field in Config: "MaxSessions", or
	// "PerClient.JoinBurst" for one of PerClient.
	Field string
	// Rule is what the setting must be, worded to follow its name: "must
	// be at least 1".
	Rule string
	// While, if not empty, is the Field of another setting: the rule
	// holds only while that one is on (above 0), as a burst's does while
	// its rate is.
	While string
	// Got is the setting's value.
	Got any
}

// Error names the settings in prose: "max sessions must be at least 1,
// got 0".
func (e *SettingError) Error() string { return e.Describe(nil) }

// Describe is Error with the settings named by name, which is given a
// Field and returns what to call it, or "" for its name in prose. A nil
// name names every setting in prose.
func (e *SettingError) Describe(name func(field string) string) string {
	call := func(field string) string {
		if name != nil {
			if n := name(field); n != "" {
				return n
			}
		}
		if n, ok := settingNames[field]; ok {
			return n
		}
		return field
	}
	s := call(e.Field) + " " + e.Rule
	if e.While != "" {
		s += " while " + call(e.While) + " is on"
	}
	return fmt.Sprintf("%s, got %v", s, e.Got)
}

// settingNames are the prose names of the settings of Config, by Field.
var settingNames = map[string]string{
	"NodeTimeout":              "node timeout",
	"ApplyTimeout":             "apply timeout",
	"SnapshotEvery":            "snapshot interval",
	"MaxSessions":              "max sessions",
	"JoinTimeout":              "join timeout",
	"QueueSize":                "queue size",
	"QueueBytes":               "queue bytes",
	"MessageRate":              "message rate",
	"MessageBurst":             "message burst",
	"HistorySize":              "history size",
	"HistoryBytes":             "history bytes",
	"MaxChannels":              "max channels",
	"MaxChannelsPerUser":       "max channels per user",
	"MaxDevicesPerUser":        "max devices per user",
	"OfflineInbox":             "offline inbox",
	"OfflineInboxBytes":        "offline inbox bytes",
	"ResumeGrace":              "resume grace",
	"ResumeBuffer":             "resume buffer",
	"ResumeBufferBytes":        "resume buffer bytes",
	"MaxRecvMsgSize":           "max receive message size",
	"MaxHeaderBytes":           "max header bytes",
	"MaxStreamsPerConn":        "max streams per connection",
	"MaxUnjoined":              "max unjoined streams",
	"PerClient.MaxConns":       "max connections per address",
	"PerClient.MaxUnjoined":    "max unjoined streams per address",
	"PerClient.MaxSessions":    "max sessions per address",
	"PerClient.JoinRate":       "join rate per address",
	"PerClient.JoinBurst":      "join burst per address",
	"PerClient.ListRate":       "list rate per address",
	"PerClient.ListBurst":      "list burst per address",
	"PerClient.RefusalRate":    "refusal rate per address",
	"PerClient.RefusalBurst":   "refusal burst per address",
	"PerClient.TrustedProxies": "trusted proxies",
	"RefusalRate":              "refusal rate",
	"RefusalBurst":             "refusal burst",
	"WriteDelay":               "write delay",
	"KeepaliveTime":            "keepalive time",
	"KeepaliveTimeout":         "keepalive timeout",
	"KeepaliveMinClientPing":   "minimum client ping interval",
}

// Validate reports every setting that cannot work, each as a
// *[SettingError], joined with [errors.Join]; nil if there is none.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, rule string, got any) {
		errs = append(errs, &SettingError{Field: field, Rule: rule, Got: got})
	}
	atLeast1 := func(field string, n int) {
		if n < 1 {
			bad(field, "must be at least 1", n)
		}
	}
	notNegative := func(field string, n int) {
		if n < 0 {
			bad(field, "must not be negative", n)
		}
	}
	// A rate of 0 is off; while it is on, its burst must let something
	// through.
	rate := func(rateField string, r float64, burstField string, burst int) {
		if r < 0 {
			bad(rateField, "must be 0 (off) or positive", r)
		}
		if r > 0 && burst < 1 {
			errs = append(errs, &SettingError{Field: burstField, Rule: "must be at least 1", While: rateField, Got: burst})
		}
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, "must be positive", d)
		}
	}

	atLeast1("MaxSessions", c.MaxSessions)
	positive("JoinTimeout", c.JoinTimeout)
	atLeast1("QueueSize", c.QueueSize)
	if c.QueueBytes < MinQueueBytes {
		bad("QueueBytes", fmt.Sprintf("must be at least %d (the longest message, twice)", MinQueueBytes), c.QueueBytes)
	}
	rate("MessageRate", c.MessageRate, "MessageBurst", c.MessageBurst)
	notNegative("HistorySize", c.HistorySize)
	notNegative("HistoryBytes", c.HistoryBytes)
	if c.MaxChannels < 1 {
		bad("MaxChannels", "must be at least 1 (for general)", c.MaxChannels)
	}
	atLeast1("MaxChannelsPerUser", c.MaxChannelsPerUser)
	atLeast1("MaxDevicesPerUser", c.MaxDevicesPerUser)
	notNegative("OfflineInbox", c.OfflineInbox)
	notNegative("OfflineInboxBytes", c.OfflineInboxBytes)
	if c.ResumeGrace < 0 {
		bad("ResumeGrace", "must be 0 (off) or positive", c.ResumeGrace)
	}
	notNegative("ResumeBuffer", c.ResumeBuffer)
	notNegative("ResumeBufferBytes", c.ResumeBufferBytes)
	if c.MaxRecvMsgSize < MinRecvMsgSize {
		bad("MaxRecvMsgSize", fmt.Sprintf("must be at least %d bytes (the longest message with its client_id and framing)", MinRecvMsgSize), c.MaxRecvMsgSize)
	}
	if c.MaxHeaderBytes < MinHeaderBytes {
		bad("MaxHeaderBytes", fmt.Sprintf("must be at least %d", MinHeaderBytes), c.MaxHeaderBytes)
	}
	if c.WriteDelay < 0 || c.WriteDelay > MaxWriteDelay {
		bad("WriteDelay", fmt.Sprintf("must be between 0 (off) and %s", MaxWriteDelay), c.WriteDelay)
	}
	atLeast1("MaxStreamsPerConn", c.MaxStreamsPerConn)
	atLeast1("MaxUnjoined", c.MaxUnjoined)
	pc := c.PerClient
	for _, v := range []struct {
		field string
		n     int
	}{{"PerClient.MaxConns", pc.MaxConns}, {"PerClient.MaxUnjoined", pc.MaxUnjoined}, {"PerClient.MaxSessions", pc.MaxSessions}} {
		if v.n < 0 {
			bad(v.field, "must be 0 (no limit) or positive", v.n)
		}
	}
	rate("PerClient.JoinRate", pc.JoinRate, "PerClient.JoinBurst", pc.JoinBurst)
	rate("PerClient.ListRate", pc.ListRate, "PerClient.ListBurst", pc.ListBurst)
	rate("PerClient.RefusalRate", pc.RefusalRate, "PerClient.RefusalBurst", pc.RefusalBurst)
	rate("RefusalRate", c.RefusalRate, "RefusalBurst", c.RefusalBurst)
	if c.KeepaliveTime < MinKeepaliveTime {
		bad("KeepaliveTime", fmt.Sprintf("must be at least %s (gRPC's minimum)", MinKeepaliveTime), c.KeepaliveTime)
	}
	positive("KeepaliveTimeout", c.KeepaliveTimeout)
	if c.KeepaliveMinClientPing < 0 {
		bad("KeepaliveMinClientPing", "must not be negative", c.KeepaliveMinClientPing)
	}
	return errors.Join(errs...)
}
