package server

import (
	"errors"
	"fmt"
	"time"
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
	// MessageRate is how many messages per second one session may send on
	// average; 0 turns rate limiting off.
	MessageRate float64
	// MessageBurst is how many messages one session may send at once before
	// MessageRate applies.
	MessageBurst int
	// HistorySize is how many of its last messages each channel keeps and
	// shows to whoever joins it; 0 keeps none.
	HistorySize int
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
		MaxSessions:            10000,
		JoinTimeout:            10 * time.Second,
		QueueSize:              1024,
		MessageRate:            10,
		MessageBurst:           20,
		HistorySize:            100,
		MaxChannels:            1000,
		MaxChannelsPerUser:     100,
		ResumeGrace:            30 * time.Second,
		ResumeBuffer:           1024,
		ResumeBufferBytes:      256 << 10,
		MaxRecvMsgSize:         16 << 10,
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
	if c.MessageRate < 0 {
		errs = append(errs, fmt.Errorf("message rate must be 0 (off) or positive, got %g", c.MessageRate))
	}
	if c.MessageRate > 0 && c.MessageBurst < 1 {
		errs = append(errs, fmt.Errorf("message burst must be at least 1 when rate limiting is on, got %d", c.MessageBurst))
	}
	if c.HistorySize < 0 {
		errs = append(errs, fmt.Errorf("history size must not be negative, got %d", c.HistorySize))
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
