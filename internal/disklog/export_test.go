package disklog

import (
	"os"
	"syscall"
)

// FailWrites makes every write to l's log fail as on a full disk while
// full reports true.
func FailWrites(l *Log, full func() bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.write = func(f *os.File, b []byte, off int64) error {
		if full() {
			// Half of it written, as a full disk may leave it.
			_, _ = f.WriteAt(b[:len(b)/2], off)
			return &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return writeAll(f, b, off)
	}
}

// HoldWrites makes every write to l's log wait, once it has written,
// until release is closed, and says on held that one waits.
func HoldWrites(l *Log, held chan<- struct{}, release <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.write = func(f *os.File, b []byte, off int64) error {
		err := writeAll(f, b, off)
		held <- struct{}{}
		<-release
		return err
	}
}
