package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// `roster lock [-n N] [-timeout D] PREFIX CHILD...`, as Consul's `consul
// lock`: hold a lock (N = 1) or a slot of an N-holder semaphore under
// PREFIX, through a session, for as long as CHILD runs. The session is
// renewed in the background; if the lock is lost (the session expired,
// or someone took the key) the child is stopped. When the child exits the
// lock is released, the session destroyed, and roster exits with the
// child's exit code.
//
// The KV layout is Consul's, so roster and Consul clients contend for the
// same locks: a lock is the key PREFIX/.lock acquired with the lock flag
// value; a semaphore is one contender key PREFIX/<session> per holder
// plus PREFIX/.lock holding {"Limit":N,"Holders":{session:true}}, updated
// with check-and-set (semaphore.go).

// Consul's flag values marking lock and semaphore keys (api/lock.go,
// api/semaphore.go).
const (
	lockFlagValue      = 0x2ddccbc058a50c18
	semaphoreFlagValue = 0xe0f69a2baa414de0
)

// lockSessionTTL and lockRetry are Consul's api.Lock defaults: a 15s
// session TTL, and 5s between attempts refused by a lock-delay.
const (
	lockSessionTTL = 15 * time.Second
	lockRetry      = 5 * time.Second
)

// errLockTimeout: -timeout passed before the lock was acquired.
var errLockTimeout = errors.New("timeout")

// holder is a lock or a semaphore slot, acquired and monitored.
type holder interface {
	// acquire blocks until held or ctx ends.
	acquire(ctx context.Context) error
	// monitor reports on lost when the hold is lost; it returns with ctx.
	monitor(ctx context.Context, lost chan<- error)
	// release gives the hold up and cleans up keys nobody uses.
	release() error
}

type lockOpts struct {
	limit         int
	timeout       time.Duration
	name          string
	shell         bool
	childExitCode bool
	verbose       bool
	passStdin     bool
}

func runLock(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("lock", "Runs a child while holding a lock or semaphore: roster lock [options] PREFIX CHILD...", stderr)
	var o lockOpts
	fs.IntVar(&o.limit, "n", 1, "Number of holders allowed at once (> 1 makes a semaphore).")
	fs.DurationVar(&o.timeout, "timeout", 0, "Give up if the lock is not acquired within this time (0: wait forever).")
	fs.StringVar(&o.name, "name", "", "Name of the session (default: \"Consul lock for PREFIX\" style).")
	fs.BoolVar(&o.shell, "shell", true, "Run the child through sh -c (CHILD words joined by spaces).")
	fs.BoolVar(&o.childExitCode, "child-exit-code", false, "Exit 2 when the child fails, as Consul does (default: the child's own exit code).")
	fs.BoolVar(&o.verbose, "verbose", false, "Print what the lock is doing.")
	fs.BoolVar(&o.passStdin, "pass-stdin", false, "Give the child roster's standard input (default: none).")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if fs.NArg() < 2 {
		fmt.Fprintln(stderr, "Key prefix and child command must be specified")
		return 1
	}
	if o.limit < 1 {
		fmt.Fprintln(stderr, "Lock holder limit must be positive")
		return 1
	}
	prefix := strings.Trim(fs.Arg(0), "/")
	if o.name == "" {
		o.name = fmt.Sprintf("Roster lock for %s", prefix)
	}
	return holdAndRun(client(), prefix, fs.Args()[1:], o, stdout, stderr)
}

// holdAndRun acquires, runs the child, and always releases.
func holdAndRun(c *apiClient, prefix string, child []string, o lockOpts, stdout, stderr io.Writer) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	session, err := createSession(c, o.name, lockSessionTTL, "release")
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer destroySession(c, session)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lost := make(chan error, 1)
	go renewUntil(ctx, c, session, lockSessionTTL, lost)

	var h holder = &kvLock{c: c, key: prefix + "/.lock", session: session}
	if o.limit > 1 {
		h = &semaphore{c: c, prefix: prefix, session: session, limit: o.limit}
	}
	if err := acquireWithin(ctx, h, o.timeout, sigs); err != nil {
		return fail(stderr, "Lock acquisition failed: %v", err)
	}
	if o.verbose {
		fmt.Fprintf(stderr, "Lock acquired on %s (session %s)\n", prefix, session)
	}
	go h.monitor(ctx, lost)
	code := runChild(child, o, lost, sigs, stdout, stderr)
	cancel()
	if err := h.release(); err != nil {
		fmt.Fprintf(stderr, "Lock release failed: %v\n", err)
		return 1
	}
	return code
}

// acquireWithin acquires h, giving up after timeout (if > 0) or on a signal.
func acquireWithin(ctx context.Context, h holder, timeout time.Duration, sigs <-chan os.Signal) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h.acquire(ctx)
	if err != nil && ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errLockTimeout
		}
		return errors.New("interrupted")
	}
	return err
}

// runChild runs the child until it exits, the lock is lost or a signal
// arrives, and returns the exit code roster should exit with.
func runChild(child []string, o lockOpts, lost <-chan error, sigs <-chan os.Signal, stdout, stderr io.Writer) int {
	cmd := exec.Command(child[0], child[1:]...)
	if o.shell {
		cmd = exec.Command("/bin/sh", "-c", strings.Join(child, " "))
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if o.passStdin {
		cmd.Stdin = os.Stdin
	}
	if err := cmd.Start(); err != nil {
		return fail(stderr, "starting the child: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return childCode(err, o.childExitCode)
	case err := <-lost:
		fmt.Fprintf(stderr, "Lock lost (%v), killing child\n", err)
	case sig := <-sigs:
		fmt.Fprintf(stderr, "Received %v, stopping child\n", sig)
	}
	stopChild(cmd, done)
	return 1
}

// childGrace is how long a child may take to exit after SIGTERM.
const childGrace = 5 * time.Second

func stopChild(cmd *exec.Cmd, done <-chan error) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(childGrace):
		cmd.Process.Kill()
		<-done
	}
}

// childCode maps the child's outcome to roster's exit code: the child's
// own code (128+signal if a signal ended it), or Consul's 2 for any
// failure with -child-exit-code.
func childCode(err error, consulStyle bool) int {
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		return 1
	}
	if consulStyle {
		return 2
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// kvLock is Consul's api.Lock: one key acquired by one session.
type kvLock struct {
	c       *apiClient
	key     string
	session string
}

func (l *kvLock) acquire(ctx context.Context) error {
	var index uint64
	for ctx.Err() == nil {
		pairs, next, err := getBlocking(ctx, l.c, l.key, false, index)
		if err != nil {
			return err
		}
		var p *kvPair
		if len(pairs) > 0 {
			p = &pairs[0]
		}
		switch {
		case p != nil && p.Flags != lockFlagValue:
			return fmt.Errorf("existing key %s does not match lock use (flags %#x)", l.key, p.Flags)
		case p != nil && p.Session == l.session:
			return nil
		case p != nil && p.Session != "":
			index = next // held by another: wait for a change
			continue
		}
		q := url.Values{"acquire": {l.session}, "flags": {strconv.FormatUint(lockFlagValue, 10)}}
		ok, err := kvWrite(l.c, "PUT", l.key, q, nil)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		// Refused while free: a lock-delay after the last holder's session
		// was invalidated. Retry after lockRetry, as api.Lock does.
		index = 0
		pause(ctx, lockRetry)
	}
	return ctx.Err()
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (l *kvLock) monitor(ctx context.Context, lost chan<- error) {
	var index uint64
	for ctx.Err() == nil {
		pairs, next, err := getBlocking(ctx, l.c, l.key, false, index)
		if err != nil {
			pause(ctx, time.Second) // the agent may be restarting; the session TTL decides
			continue
		}
		if len(pairs) == 0 || pairs[0].Session != l.session {
			report(lost, fmt.Errorf("%s is no longer held by this session", l.key))
			return
		}
		index = next
	}
}

func (l *kvLock) release() error {
	q := url.Values{"release": {l.session}, "flags": {strconv.FormatUint(lockFlagValue, 10)}}
	if _, err := kvWrite(l.c, "PUT", l.key, q, nil); err != nil {
		return err
	}
	// Delete the key if nobody took it meanwhile (api.Lock's Destroy).
	pairs, _, err := getBlocking(context.Background(), l.c, l.key, false, 0)
	if err == nil && len(pairs) == 1 && pairs[0].Session == "" {
		kvWrite(l.c, "DELETE", l.key, url.Values{"cas": {strconv.FormatUint(pairs[0].ModifyIndex, 10)}}, nil)
	}
	return nil
}
