package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// `roster kv export|import`: a subtree as Consul's JSON interchange
// format, so a dump from either tool loads into the other.

// kvEntry is one element of the export format: lower-case keys and the
// value in base64, exactly as `consul kv export` writes them.
type kvEntry struct {
	Key   string `json:"key"`
	Flags uint64 `json:"flags"`
	Value string `json:"value"`
}

func runKVExport(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("kv export", "Prints every key under a prefix as JSON: roster kv export [PREFIX].", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	prefix, ok := oneKeyArg(fs.Args(), true, stderr)
	if !ok {
		return 1
	}
	pairs, err := kvList(client(), prefix, nil)
	if err != nil {
		fmt.Fprintf(stderr, "Error querying Consul agent: %v\n", err)
		return 1
	}
	entries := make([]kvEntry, len(pairs))
	for i, p := range pairs {
		entries[i] = kvEntry{Key: p.Key, Flags: p.Flags, Value: base64.StdEncoding.EncodeToString(p.Value)}
	}
	b, err := json.MarshalIndent(entries, "", "\t")
	if err != nil {
		return fail(stderr, "encoding the export: %v", err)
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

func runKVImport(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("kv import", "Writes the keys of an export: roster kv import [@file|-|JSON].", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	var raw []byte
	var err error
	switch a := fs.Args(); {
	case len(a) > 1:
		fmt.Fprintf(stderr, "Too many arguments (expected 1, got %d)\n", len(a))
		return 1
	case len(a) == 0:
		raw, err = io.ReadAll(os.Stdin)
	default:
		raw, err = readData(a[0], false)
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error! %v\n", err)
		return 1
	}
	var entries []kvEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		fmt.Fprintf(stderr, "Cannot unmarshal data: %v (want a JSON array of {\"key\",\"flags\",\"value\"} as kv export writes)\n", err)
		return 1
	}
	c := client()
	for _, e := range entries {
		if err := importEntry(c, e); err != nil {
			fmt.Fprintf(stderr, "Error! Failed writing data for key %s: %v\n", e.Key, err)
			return 1
		}
		fmt.Fprintf(stdout, "Imported: %s\n", e.Key)
	}
	return 0
}

func importEntry(c *apiClient, e kvEntry) error {
	if e.Key == "" || strings.HasPrefix(e.Key, "/") {
		return fmt.Errorf("the key must be non-empty and not begin with '/'")
	}
	value, err := base64.StdEncoding.DecodeString(e.Value)
	if err != nil {
		return fmt.Errorf("the value is not base64: %v", err)
	}
	q := url.Values{}
	if e.Flags != 0 {
		q.Set("flags", strconv.FormatUint(e.Flags, 10))
	}
	code, body, err := c.rawDo("PUT", kvPath(e.Key), q, value)
	if err == nil && code/100 != 2 {
		err = statusErr(code, body)
	}
	return err
}
