//go:build !unix

package admission

import "io"

// Elsewhere a counted connection is read the ordinary way (see
// readyReader).
const rawReadSupported = false

var errEOF = io.EOF

func rawRead(uintptr, []byte) (int, error) { return 0, nil }

func wouldBlock(error) bool { return false }
