// Package testkit holds the few helpers every roster test uses, so that all
// tests follow the same rules (see DESIGN.md, house rule 11):
//
//   - Servers under test bind ":0" (port 0) and report the port they got;
//     FreePorts, loopback ports that were free a moment ago, is only for
//     a server a test restarts on the same ports and for programs that
//     must be told every port before any starts (etcd).
//   - WaitFor polls a condition until a deadline instead of sleeping: a test
//     never sleeps "long enough" for something to happen, it waits for the
//     thing itself and fails with a message when the deadline passes.
//   - Rand returns a *rand.Rand seeded from -seed (or from the clock), and
//     logs the seed so any randomized failure can be replayed with
//     `go test -run TheTest -seed N`.
//
// testkit imports no other roster package, so every package may use it.
package testkit
