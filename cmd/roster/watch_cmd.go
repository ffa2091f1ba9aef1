package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"roster/catalog"
	"roster/httpapi/client"
)

// `roster watch` follows the registry with roster's incremental pulls
// (httpapi/client): one full pull, then blocking delta pulls, each
// verified against the server's SHA-256 hashcode; a gap, a mismatch or an
// index that fell out of the server's delta ring costs one full pull. It
// prints every change as it arrives, and the watcher's counters at exit.

func runWatch(args []string, stdout, stderr io.Writer) int {
	fs, api := newCmdFlags("watch", "Prints registry changes live, using incremental (delta) pulls.", stderr)
	service := fs.String("service", "", "Only show instances of this service.")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	c := api() // -stale, -datacenter and -token are the common HTTP options
	w, err := client.New(client.Config{Address: c.base, Stale: c.stale, Datacenter: c.dc, Token: c.token,
		OnError: errorReporter(stderr)})
	if err != nil {
		return fail(stderr, "starting the watch: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = w.Watch(ctx, func(u client.Update) { printUpdate(stdout, w, u, *service) })
	m := w.Metrics()
	fmt.Fprintf(stderr, "pulls: %d delta, %d full (%d fallbacks), %d bytes on the wire\n",
		m.DeltaPulls, m.FullPulls, m.Fallbacks, m.Bytes)
	if err != nil && ctx.Err() == nil {
		return fail(stderr, "watching: %v", err)
	}
	return 0
}

// errorReporter prints a failed pull to stderr when its error differs from
// the previous one, so a lasting error (an agent down, or one computing the
// hashcode with another scheme: upgrade the older side) is said once, not
// on every retry.
func errorReporter(stderr io.Writer) func(error) {
	last := ""
	return func(err error) {
		if msg := err.Error(); msg != last {
			last = msg
			fmt.Fprintf(stderr, "roster watch: %s (retrying)\n", msg)
		}
	}
}

// printUpdate prints a full pull as the instance list, a delta as its changes.
func printUpdate(out io.Writer, w *client.Watcher, u client.Update, service string) {
	if u.Full {
		fmt.Fprintf(out, "index %d hash %.12s: full registry\n", u.Index, u.Hash)
		for _, in := range w.Instances(service) { // sorted by service, node, ID
			fmt.Fprintf(out, "  %s\n", describeInstance(in))
		}
		return
	}
	for _, c := range u.Changes {
		if service != "" && (c.Instance == nil || c.Instance.Service != service) {
			continue // node-level changes are shown only without -service
		}
		fmt.Fprintf(out, "index %d %s %s\n", c.Index, c.Kind, describeChange(c))
	}
}

func describeChange(c catalog.Change) string {
	if c.Instance == nil {
		return c.Node
	}
	return describeInstance(*c.Instance)
}

func describeInstance(in catalog.Instance) string {
	s := fmt.Sprintf("%s/%s on %s", in.Service, in.ID, in.Node)
	if addr := in.Address; addr != "" || in.NodeAddress != "" {
		if addr == "" {
			addr = in.NodeAddress
		}
		s += fmt.Sprintf(" %s:%d", addr, in.Port)
	}
	if in.Health != "" {
		s += " " + in.Health
	}
	return s
}
