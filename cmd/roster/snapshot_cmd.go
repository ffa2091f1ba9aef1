package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"roster/cmd/roster/internal/agent"
)

// `roster snapshot save|restore|inspect`, as Consul's `consul snapshot`:
// save fetches GET /v1/snapshot and verifies it before keeping it,
// restore sends a file to PUT /v1/snapshot, inspect reads a file offline.

func runSnapshot(args []string, stdout, stderr io.Writer) int {
	return runSubcommand("snapshot", "Usage: roster snapshot <save|restore|inspect> [options] FILE",
		map[string]func([]string, io.Writer, io.Writer) int{
			"save": runSnapshotSave, "restore": runSnapshotRestore, "inspect": runSnapshotInspect,
		}, args, stdout, stderr)
}

// oneFileArg returns the single FILE argument, or prints Consul's error.
func oneFileArg(args []string, stderr io.Writer) (string, bool) {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "This command takes one argument: <file> (got %d)\n", len(args))
		return "", false
	}
	return args[0], true
}

func runSnapshotSave(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("snapshot save", "Saves a snapshot of the servers' state: roster snapshot save [options] FILE", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	file, ok := oneFileArg(fs.Args(), stderr)
	if !ok {
		return 1
	}
	code, body, err := client().rawDo("GET", "/v1/snapshot", nil, nil)
	if err == nil && code/100 != 2 {
		err = statusErr(code, body)
	}
	if err != nil {
		return fail(stderr, "saving snapshot: %v", err)
	}
	meta, _, err := agent.ReadSnapshotArchive(bytes.NewReader(body))
	if err != nil {
		return fail(stderr, "verifying snapshot: %v", err)
	}
	// Write beside the target and rename, so a failed save never leaves a
	// half-written file under the name asked for.
	tmp := file + ".part"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		return fail(stderr, "writing snapshot: %v", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fail(stderr, "writing snapshot: %v", err)
	}
	fmt.Fprintf(stdout, "Saved and verified snapshot to index %d\n", meta.Index)
	return 0
}

func runSnapshotRestore(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("snapshot restore", "Restores a snapshot on every server: roster snapshot restore [options] FILE", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	file, ok := oneFileArg(fs.Args(), stderr)
	if !ok {
		return 1
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return fail(stderr, "opening snapshot file: %v", err)
	}
	code, out, err := client().rawDo("PUT", "/v1/snapshot", nil, body)
	if err == nil && code/100 != 2 {
		err = statusErr(code, out)
	}
	if err != nil {
		return fail(stderr, "restoring snapshot: %v", err)
	}
	fmt.Fprintln(stdout, "Restored snapshot")
	return 0
}

func runSnapshotInspect(args []string, stdout, stderr io.Writer) int {
	fs := newLocalFlags("snapshot inspect", "Prints a snapshot file's metadata and contents: roster snapshot inspect FILE", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	file, ok := oneFileArg(fs.Args(), stderr)
	if !ok {
		return 1
	}
	f, err := os.Open(file)
	if err != nil {
		return fail(stderr, "opening snapshot file: %v", err)
	}
	defer f.Close()
	meta, state, err := agent.ReadSnapshotArchive(f)
	if err != nil {
		return fail(stderr, "inspecting snapshot: %v", err)
	}
	c, err := agent.InspectSnapshotState(state)
	if err != nil {
		return fail(stderr, "inspecting snapshot: %v", err)
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	for _, row := range [][2]any{
		{"ID", meta.ID}, {"Size", meta.Size}, {"Index", meta.Index}, {"Term", meta.Term}, {"Version", meta.Version},
		{"Datacenter", meta.Datacenter}, {"Node", meta.Node}, {"Created", meta.Created.Format("2006-01-02T15:04:05Z07:00")},
		{"SHA256", meta.SHA256}, {"Nodes", c.Nodes}, {"Services", c.Services}, {"Checks", c.Checks},
		{"KV entries", c.KVs}, {"Sessions", c.Sessions}, {"Registry hash", c.RegistryHash},
	} {
		fmt.Fprintf(w, "%v\t%v\n", row[0], row[1])
	}
	return 0
}

// newLocalFlags is newCmdFlags for a command that does not talk to an
// agent (no HTTP options).
func newLocalFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: roster %s [options]\n\n%s Options:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}
