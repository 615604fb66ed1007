// Package e2e holds chatd's end-to-end tests. They build the real chatd and
// chatctl binaries once, start a fresh chatd on a free loopback port for
// each test, and drive chatctl (and grpcurl, through server reflection) as a
// user would: through arguments, standard input, standard output, standard
// error and exit codes.
//
// Run them with
//
//	go test -race ./e2e/...
//
// Under -race the binaries are built with -race too, so a data race in
// chatd or chatctl makes the process exit with status 66 and fails the test.
package e2e
