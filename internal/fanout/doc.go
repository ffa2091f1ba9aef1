// Package fanout delivers a stream of events to any number of observers
// without ever letting a slow observer slow down the code that emits them.
//
// Every protocol in roster (Raft, SWIM, the catalog, the agent) reports its
// state transitions as typed events. Logs, metrics, the /v1/roster/events
// stream, the UI and test failure dumps are all observers of those events.
// The protocols run on a single goroutine each (see DESIGN.md, "Pure core,
// friendly shell"), so publishing must never block: Hub.Publish copies the
// event into each observer's bounded buffer and, when a buffer is full,
// drops the event for that observer and counts the drop. An observer can
// always tell how much it missed (Observer.Dropped), and nothing upstream
// ever waits for it.
//
// A tour:
//
//   - Hub[E] is the fan-out point; a protocol shell owns one per event type.
//   - Hub.Subscribe returns an Observer with its own buffered channel.
//   - Hub.Publish never blocks; Hub.Dropped totals the drops of all observers.
//   - Observer.Close unsubscribes; Hub.Close closes every observer channel.
//
// Hub is generic so that each package keeps its own event type (raft.Event,
// swim.Event, ...) as DESIGN.md asks, while sharing one tested mechanism.
package fanout
