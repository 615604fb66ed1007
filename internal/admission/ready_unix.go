//go:build unix

package admission

import (
	"io"
	"syscall"
)

const rawReadSupported = true

var errEOF = io.EOF

// rawRead reads with the syscall package, as net does: mixing it with
// golang.org/x/sys/unix on one socket confuses the race detector.
func rawRead(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }

func wouldBlock(err error) bool { return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK }
