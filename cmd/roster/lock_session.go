package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Sessions and blocking KV reads, the primitives of `roster lock` and
// `kv put -acquire`: the same calls Consul's api.Lock and api.Semaphore
// make.

// errSessionGone: the session expired or was destroyed (renew got a 404).
var errSessionGone = errors.New("the session is gone (expired, destroyed or its node failed)")

// createSession creates a session on the local agent's node and returns
// its ID. behavior is "release" or "delete".
func createSession(c *apiClient, name string, ttl time.Duration, behavior string) (string, error) {
	body, _ := json.Marshal(map[string]string{"Name": name, "TTL": ttl.String(), "Behavior": behavior})
	var out struct{ ID string }
	code, resp, err := c.rawDo("PUT", "/v1/session/create", nil, body)
	if err := decodeOK(code, resp, err, &out); err != nil {
		return "", fmt.Errorf("creating a session: %w", err)
	}
	if out.ID == "" {
		return "", errors.New("creating a session: the agent answered no ID")
	}
	return out.ID, nil
}

func renewSession(ctx context.Context, c *apiClient, id string) error {
	code, body, err := c.rawDoCtx(ctx, "PUT", "/v1/session/renew/"+id, nil, nil)
	switch {
	case err != nil:
		return err
	case code == http.StatusNotFound:
		return errSessionGone
	case code/100 != 2:
		return statusErr(code, body)
	}
	return nil
}

func destroySession(c *apiClient, id string) error {
	code, body, err := c.rawDo("PUT", "/v1/session/destroy/"+id, nil, nil)
	if err == nil && code/100 != 2 {
		err = statusErr(code, body)
	}
	return err
}

// renewUntil renews the session every ttl/2 until ctx ends; it reports
// on lost (once) when the session is gone.
func renewUntil(ctx context.Context, c *apiClient, id string, ttl time.Duration, lost chan<- error) {
	t := time.NewTicker(ttl / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := renewSession(ctx, c, id); errors.Is(err, errSessionGone) {
			report(lost, err)
			return
		}
	}
}

// report sends err on ch unless ch already holds an error.
func report(ch chan<- error, err error) {
	select {
	case ch <- err:
	default:
	}
}

// lockWait is the wait of each blocking read; the caller's context bounds
// the whole.
const lockWait = 5 * time.Second

// getBlocking reads key (or, with recurse, every key under it) as a
// consistent blocking query: it returns once the index passes index, or
// after lockWait. A missing key is an empty list.
func getBlocking(ctx context.Context, c *apiClient, key string, recurse bool, index uint64) ([]kvPair, uint64, error) {
	q := url.Values{"consistent": {""}, "wait": {lockWait.String()}}
	if index > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
	}
	if recurse {
		q.Set("recurse", "")
	}
	req, err := c.newRequest("GET", kvPath(key), q, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.send(req.WithContext(ctx))
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	newIndex, _ := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	if newIndex < index {
		newIndex = 0 // the index went backwards (a restore): start over, as Consul's clients do
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, newIndex, nil
	}
	var pairs []kvPair
	if resp.StatusCode/100 != 2 {
		return nil, 0, fmt.Errorf("Unexpected response code: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&pairs); err != nil {
		return nil, 0, fmt.Errorf("decoding %s: %w", key, err)
	}
	return pairs, newIndex, nil
}

// kvWrite is one PUT or DELETE on key with query q; it reports the
// agent's true/false answer.
func kvWrite(c *apiClient, method, key string, q url.Values, value []byte) (bool, error) {
	code, body, err := c.rawDo(method, kvPath(key), q, value)
	if err == nil && code/100 != 2 {
		err = statusErr(code, body)
	}
	if err != nil {
		return false, err
	}
	return string(body) == "true" || string(body) == "true\n", nil
}

// lockFlags are kv put's -acquire, -release and -session.
type lockFlags struct {
	acquire, release *bool
	session          *string
}

// check rejects the combinations Consul rejects.
func (lf lockFlags) check(cas bool) error {
	switch {
	case *lf.acquire && *lf.release:
		return errors.New("Cannot specify both -acquire and -release")
	case cas && (*lf.acquire || *lf.release):
		return errors.New("Cannot specify -cas with -acquire or -release")
	case *lf.release && *lf.session == "":
		return errors.New("Missing -session (required with -release)")
	case *lf.session != "" && !*lf.acquire && !*lf.release:
		return errors.New("-session requires -acquire or -release")
	}
	return nil
}

// kvPutLock is kv put with -acquire or -release: the value is written
// only if the lock operation succeeds.
func kvPutLock(c *apiClient, lf lockFlags, key string, q url.Values, data []byte, stdout, stderr io.Writer) int {
	session := *lf.session
	if *lf.acquire && session == "" {
		s, err := createSession(c, "", lockSessionTTL, "delete")
		if err != nil {
			fmt.Fprintf(stderr, "Error! %v\n", err)
			return 1
		}
		session = s
	}
	verb, done := "acquire", "Lock acquired on"
	if *lf.release {
		verb, done = "release", "Lock released on"
	}
	q.Set(verb, session)
	ok, err := kvWrite(c, "PUT", key, q, data)
	if err != nil {
		fmt.Fprintf(stderr, "Error! Failed writing data: %v\n", err)
		return 1
	}
	if !ok {
		fmt.Fprintf(stderr, "Error! Did not %s lock on %s (session %s)\n", verb, key, session)
		return 1
	}
	fmt.Fprintf(stdout, "Success! %s: %s\n", done, key)
	return 0
}
