package auth

import "time"

// Clock tells the time and times a session's end, so that tests can move
// time on at will instead of waiting for a token to expire.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed; stop
	// cancels that if it has not happened yet.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock returns the real clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
