package gateway

// Watched returns how many websockets the keepalive watcher is watching:
// the websockets whose connection is still open.
func (gw *Gateway) Watched() int {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	return len(gw.conns)
}
