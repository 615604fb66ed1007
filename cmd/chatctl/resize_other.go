//go:build !unix

package main

// onResize does nothing where there is no SIGWINCH: the line editor keeps
// the width it was given first.
func onResize(func()) (stop func()) { return func() {} }
