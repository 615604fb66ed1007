package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a
// session's reader or writer, a gRPC transport, a proxy pump. goleak retries
// for a while, so goroutines that are merely on their way out pass.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
