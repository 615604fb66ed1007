package auth

// Expiry returns a channel closed when the token of id is no longer valid
// (its "exp" plus [Leeway], the moment [Verifier.Verify] starts refusing
// it), and a function that stops the wait; call it when the session ends.
func (v *Verifier) Expiry(id Identity) (expired <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	d := id.Expires.Add(Leeway).Sub(v.clock.Now())
	if d <= 0 {
		close(ch)
		return ch, func() {}
	}
	cancel := v.clock.AfterFunc(d, func() { close(ch) })
	return ch, func() { cancel() }
}

// Expired is the error for a session whose token expired while it ran.
var Expired = &Error{Expired: true, Msg: "your sign-in token expired: reconnect with a fresh token to resume the session"}
