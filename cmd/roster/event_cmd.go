package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
)

// `roster event` fires a user event over the LAN pool, as `consul event`;
// `roster keygen` makes a gossip encryption key for -encrypt.

func runEvent(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("event", "Fires a user event: roster event -name=NAME [options] [payload].", stderr)
	name := fs.String("name", "", "The event's name (required).")
	node := fs.String("node", "", "Regular expression: only nodes whose name matches handle the event.")
	service := fs.String("service", "", "Regular expression: only nodes running a matching service handle it.")
	tag := fs.String("tag", "", "Regular expression on service tags; requires -service.")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if *name == "" {
		fmt.Fprintln(stderr, "Event name must be specified")
		return 1
	}
	if *tag != "" && *service == "" {
		fmt.Fprintln(stderr, "Cannot provide tag filter without service filter.")
		return 1
	}
	for flagName, re := range map[string]string{"node": *node, "service": *service, "tag": *tag} {
		if _, err := regexp.Compile(re); err != nil {
			fmt.Fprintf(stderr, "Failed to compile %s filter regexp: %v\n", flagName, err)
			return 1
		}
	}
	var payload []byte
	switch fs.NArg() {
	case 0:
	case 1:
		payload = []byte(fs.Arg(0))
	default:
		fmt.Fprintln(stderr, "Too many command line arguments.")
		return 1
	}
	q := url.Values{}
	for k, v := range map[string]string{"node": *node, "service": *service, "tag": *tag} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var ev struct{ ID string }
	code, body, err := client().rawDo("PUT", "/v1/event/fire/"+url.PathEscape(*name), q, payload)
	if err = decodeOK(code, body, err, &ev); err != nil {
		return fail(stderr, "firing event: %v", err)
	}
	fmt.Fprintf(stdout, "Event ID: %s\n", ev.ID)
	return 0
}

// gossipKeyBytes is the key size -encrypt takes: AES-256.
const gossipKeyBytes = 32

func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: roster keygen\n\nPrints a new random gossip encryption key (base64) for -encrypt.")
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "Too many arguments (expected 0, got %d)\n", fs.NArg())
		return 1
	}
	key := make([]byte, gossipKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return fail(stderr, "reading random bytes: %v", err)
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
	return 0
}
