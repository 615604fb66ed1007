//go:build !unix

package disklog

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens the data directory's LOCK file. There is no lock on this
// system: it is up to the operator not to start two chatd on one
// directory.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", path, err)
	}
	return f, nil
}

func unlockDir(f *os.File) error { return f.Close() }

func syncDir(string) error { return nil }
