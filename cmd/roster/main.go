package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"sort"
)

// command is one roster subcommand.
type command struct {
	synopsis string
	run      func(args []string, stdout, stderr io.Writer) int
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"agent":       {"Runs a roster agent (server or client)", runAgent},
		"catalog":     {"Lists the catalog's services and nodes", runCatalog},
		"event":       {"Fires a user event to the cluster", runEvent},
		"keygen":      {"Prints a new gossip encryption key", runKeygen},
		"kv":          {"Reads and writes the key/value store", runKV},
		"dev-cluster": {"Runs several servers in one process on loopback, for demos", runDevCluster},
		"info":        {"Prints the agent's runtime statistics", runInfo},
		"join":        {"Joins the agent to a cluster", runJoin},
		"lock":        {"Runs a command while holding a lock or semaphore", runLock},
		"leave":       {"Makes the agent leave the cluster and shut down", runLeave},
		"members":     {"Lists the members of the cluster", runMembers},
		"watch":       {"Prints registry changes live, using incremental pulls", runWatch},
		"operator":    {"Raft and autopilot: operator raft list-peers|remove-peer|transfer-leader, operator autopilot get-config|set-config|state", runOperator},
		"force-leave": {"Forces a failed member of the cluster to leave", runForceLeave},
		"version":     {"Prints the roster version", runVersion},
		"snapshot":    {"Saves, restores and inspects snapshots of the servers' state", runSnapshot},
	}
	maps.Copy(commands, localCommands) // services, maint, reload: services_cmds.go
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code:
// 0 success, 1 error, 2 bad usage (as Go's flag package and Consul do).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run([]string{"-h"}, stdout, stdout)
			}
		}
		usage(stdout)
		return 0
	case "-v", "-version", "--version":
		return runVersion(nil, stdout, stderr)
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "roster: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: roster <command> [options]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "    %-12s %s\n", n, commands[n].synopsis)
	}
	fmt.Fprintln(w, "\nRun 'roster <command> -h' for a command's options.")
}

// runSubcommand dispatches `roster <name> <sub> ...` to subs: without a
// subcommand the usage goes to stderr (exit 2), -h prints it to stdout
// (exit 0), an unknown one is named (exit 2), as Consul's CLI does.
func runSubcommand(name, usage string, subs map[string]func([]string, io.Writer, io.Writer) int,
	args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if f, ok := subs[args[0]]; ok {
		return f(args[1:], stdout, stderr)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "roster %s: unknown subcommand %q\n%s\n", name, args[0], usage)
	return 2
}

// exitUsage maps a flag parse error to an exit code: -h is a success.
func exitUsage(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
