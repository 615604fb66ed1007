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
	// QueueSize is how many events may wait for one session's writer. A
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
	// MaxChannelsPerUser is how many channels one session may be in at once.
	MaxChannelsPerUser int
	// ResumeGrace is how long a session whose stream ended without a logout
	// is kept for a resume; its username is held for it meanwhile. 0 ends
	// such a session at once; a resume token still takes a session back
	// from its own stream while that stream is attached (half-dead).
	ResumeGrace time.Duration
	// ResumeBuffer is how many of its last events each session keeps for a
	// resume. A client that missed more gets a fresh snapshot instead
	// (RECOVERY_INCOMPLETE).
	ResumeBuffer int
	// ResumeBufferBytes bounds the same log by the encoded size of the
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
	// waiting for their join at once. Past it, new streams are refused
	// with RESOURCE_EXHAUSTED.
	MaxUnjoined int
	// PerClient is what one client address may have and do; see
	// [admission.Config].
	PerClient admission.Config
	// RefusalRate is how many refused requests per second a session may
	// make on average, RefusalBurst how many at once; a session past that
	// is ended with RESOURCE_EXHAUSTED. 0 turns the limit off.
	RefusalRate  float64
	RefusalBurst int
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
		ResumeGrace:        30 * time.Second,
		ResumeBuffer:       1024,
		ResumeBufferBytes:  256 << 10,
		MaxRecvMsgSize:     16 << 10,
		MaxHeaderBytes:     16 << 10,
		MaxStreamsPerConn:  100,
		MaxUnjoined:        1000,
		PerClient: admission.Config{
			MaxConns:    100,
			MaxUnjoined: 16,
			MaxSessions: 100,
			JoinRate:    5,
			JoinBurst:   50,
			ListRate:    5,
			ListBurst:   20,
		},
		RefusalRate:            10,
		RefusalBurst:           100,
		KeepaliveTime:          25 * time.Second,
		KeepaliveTimeout:       20 * time.Second,
		KeepaliveMinClientPing: 10 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.MaxSessions < 1 {
		errs = append(errs, fmt.Errorf("max sessions must be at least 1, got %d", c.MaxSessions))
	}
	if c.JoinTimeout <= 0 {
		errs = append(errs, fmt.Errorf("join timeout must be positive, got %s", c.JoinTimeout))
	}
	if c.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("queue size must be at least 1, got %d", c.QueueSize))
	}
	// A queue must hold the longest message, or its recipients are
	// dropped by it.
	if minBytes := 2 * (MaxTextBytes + 1024); c.QueueBytes < minBytes {
		errs = append(errs, fmt.Errorf("queue bytes must be at least %d, got %d", minBytes, c.QueueBytes))
	}
	if c.MessageRate < 0 {
		errs = append(errs, fmt.Errorf("message rate must be 0 (off) or positive, got %g", c.MessageRate))
	}
	if c.MessageRate > 0 && c.MessageBurst < 1 {
		errs = append(errs, fmt.Errorf("message burst must be at least 1 when rate limiting is on, got %d", c.MessageBurst))
	}
	if c.HistorySize < 0 {
		errs = append(errs, fmt.Errorf("history size must not be negative, got %d", c.HistorySize))
	}
	if c.HistoryBytes < 0 {
		errs = append(errs, fmt.Errorf("history bytes must not be negative, got %d", c.HistoryBytes))
	}
	if c.MaxChannels < 1 {
		errs = append(errs, fmt.Errorf("max channels must be at least 1 (general), got %d", c.MaxChannels))
	}
	if c.MaxChannelsPerUser < 1 {
		errs = append(errs, fmt.Errorf("max channels per user must be at least 1, got %d", c.MaxChannelsPerUser))
	}
	if c.ResumeGrace < 0 {
		errs = append(errs, fmt.Errorf("resume grace must be 0 (off) or positive, got %s", c.ResumeGrace))
	}
	if c.ResumeBuffer < 0 {
		errs = append(errs, fmt.Errorf("resume buffer must not be negative, got %d", c.ResumeBuffer))
	}
	if c.ResumeBufferBytes < 0 {
		errs = append(errs, fmt.Errorf("resume buffer bytes must not be negative, got %d", c.ResumeBufferBytes))
	}
	// A request must be able to carry the longest message with its
	// client_id and framing.
	if minSize := MaxTextBytes + MaxClientIDBytes + 64; c.MaxRecvMsgSize < minSize {
		errs = append(errs, fmt.Errorf("max receive message size must be at least %d bytes, got %d", minSize, c.MaxRecvMsgSize))
	}
	// The largest message gRPC's own headers and a resume token need,
	// with room for a proxy's additions.
	if c.MaxHeaderBytes < 4096 {
		errs = append(errs, fmt.Errorf("max header bytes must be at least 4096, got %d", c.MaxHeaderBytes))
	}
	if c.MaxStreamsPerConn < 1 {
		errs = append(errs, fmt.Errorf("max streams per connection must be at least 1, got %d", c.MaxStreamsPerConn))
	}
	if c.MaxUnjoined < 1 {
		errs = append(errs, fmt.Errorf("max unjoined streams must be at least 1, got %d", c.MaxUnjoined))
	}
	pc := c.PerClient
	for _, v := range []struct {
		name string
		n    int
	}{{"max connections per address", pc.MaxConns}, {"max unjoined streams per address", pc.MaxUnjoined}, {"max sessions per address", pc.MaxSessions}} {
		if v.n < 0 {
			errs = append(errs, fmt.Errorf("%s must be 0 (no limit) or positive, got %d", v.name, v.n))
		}
	}
	for _, v := range []struct {
		name  string
		rate  float64
		burst int
	}{{"join rate per address", pc.JoinRate, pc.JoinBurst}, {"list rate per address", pc.ListRate, pc.ListBurst}, {"refusal rate", c.RefusalRate, c.RefusalBurst}} {
		if v.rate < 0 {
			errs = append(errs, fmt.Errorf("%s must be 0 (off) or positive, got %g", v.name, v.rate))
		}
		if v.rate > 0 && v.burst < 1 {
			errs = append(errs, fmt.Errorf("%s: its burst must be at least 1 when the rate is on, got %d", v.name, v.burst))
		}
	}
	if c.KeepaliveTime < time.Second {
		errs = append(errs, fmt.Errorf("keepalive time must be at least 1s (gRPC's minimum), got %s", c.KeepaliveTime))
	}
	if c.KeepaliveTimeout <= 0 {
		errs = append(errs, fmt.Errorf("keepalive timeout must be positive, got %s", c.KeepaliveTimeout))
	}
	if c.KeepaliveMinClientPing < 0 {
		errs = append(errs, fmt.Errorf("minimum client ping interval must not be negative, got %s", c.KeepaliveMinClientPing))
	}
	return errors.Join(errs...)
}
