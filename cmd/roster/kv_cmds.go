package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// `roster kv get|put|delete|export|import`, as Consul's `consul kv`: the
// same flags, the same success and error lines, the same exit codes
// (1 for a failed operation or a missing argument, 2 for a flag the
// parser rejects). Values travel as raw bytes, so these commands use
// rawDo rather than apiClient.do, which decodes JSON.

// kvMaxResponseBytes bounds what a kv command reads from the agent: a
// recursive get or export of a large tree is the biggest answer.
const kvMaxResponseBytes = 256 << 20

// kvPair is /v1/kv's element; Value arrives base64-encoded and
// encoding/json decodes it into the raw bytes.
type kvPair struct {
	Key                             string
	Flags, CreateIndex, ModifyIndex uint64
	LockIndex                       uint64
	Session                         string
	Value                           []byte
}

// kvPath is the URL path of key; each segment is escaped so keys with
// spaces, '?' or '%' survive the trip.
func kvPath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/v1/kv/" + strings.Join(segs, "/")
}

func runKV(args []string, stdout, stderr io.Writer) int {
	return runSubcommand("kv", "Usage: roster kv <get|put|delete|export|import> [options] [args]",
		map[string]func([]string, io.Writer, io.Writer) int{
			"get": runKVGet, "put": runKVPut, "delete": runKVDelete,
			"export": runKVExport, "import": runKVImport,
		}, args, stdout, stderr)
}

// oneKeyArg returns the single key argument; a prefix command
// (recurse, keys, export) may omit it, meaning the whole store.
func oneKeyArg(args []string, optional bool, stderr io.Writer) (string, bool) {
	switch {
	case len(args) > 1:
		fmt.Fprintf(stderr, "Too many arguments (expected 1, got %d)\n", len(args))
		return "", false
	case len(args) == 0 && !optional:
		fmt.Fprintln(stderr, "Error! Missing KEY argument")
		return "", false
	case len(args) == 0:
		return "", true
	}
	if strings.HasPrefix(args[0], "/") {
		fmt.Fprintf(stderr, "Error! Key must not begin with a '/': %s\n", args[0])
		return "", false
	}
	return args[0], true
}

func runKVGet(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("kv get", "Reads a key's value, or the keys under a prefix.", stderr)
	recurse := fs.Bool("recurse", false, "Print every key under the prefix as key:value.")
	keys := fs.Bool("keys", false, "Print only the key names under the prefix.")
	sep := fs.String("separator", "/", "With -keys, roll names up to this separator (empty: list every key).")
	detailed := fs.Bool("detailed", false, "Print the key's metadata as well as its value.")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	key, ok := oneKeyArg(fs.Args(), *recurse || *keys, stderr)
	if !ok {
		return 1
	}
	q := url.Values{}
	c := client()
	switch {
	case *keys:
		return kvGetKeys(c, key, *sep, q, stdout, stderr)
	case *recurse:
		return kvGetRecurse(c, key, *detailed, q, stdout, stderr)
	}
	var pairs []kvPair
	code, body, err := c.rawDo("GET", kvPath(key), q, nil)
	if err == nil && code == http.StatusNotFound {
		fmt.Fprintf(stderr, "Error! No key exists at: %s\n", key)
		return 1
	}
	if err = decodeOK(code, body, err, &pairs); err != nil || len(pairs) == 0 {
		return fail(stderr, "querying Consul agent: %v", orEmpty(err))
	}
	if *detailed {
		printKVDetailed(stdout, pairs[0])
		return 0
	}
	fmt.Fprintf(stdout, "%s\n", pairs[0].Value)
	return 0
}

// orEmpty names the case of a 200 with no pair, which should not happen.
func orEmpty(err error) error {
	if err == nil {
		return fmt.Errorf("the agent answered no key")
	}
	return err
}

// decodeOK turns a rawDo result into an error or a decoded JSON body.
func decodeOK(code int, body []byte, err error, out any) error {
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return statusErr(code, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding the agent's answer: %w", err)
	}
	return nil
}

func kvGetKeys(c *apiClient, prefix, sep string, q url.Values, stdout, stderr io.Writer) int {
	q.Set("keys", "")
	if sep != "" {
		q.Set("separator", sep)
	}
	var names []string
	code, body, err := c.rawDo("GET", kvPath(prefix), q, nil)
	if err == nil && code == http.StatusNotFound {
		return 0 // nothing under the prefix: Consul prints nothing
	}
	if err := decodeOK(code, body, err, &names); err != nil {
		return fail(stderr, "querying Consul agent: %v", err)
	}
	for _, n := range names {
		fmt.Fprintln(stdout, n)
	}
	return 0
}

func kvGetRecurse(c *apiClient, prefix string, detailed bool, q url.Values, stdout, stderr io.Writer) int {
	pairs, err := kvList(c, prefix, q)
	if err != nil {
		return fail(stderr, "querying Consul agent: %v", err)
	}
	for i, p := range pairs {
		if detailed {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printKVDetailed(stdout, p)
			continue
		}
		fmt.Fprintf(stdout, "%s:%s\n", p.Key, p.Value)
	}
	return 0
}

// kvList is every pair under prefix; a 404 is the empty list.
func kvList(c *apiClient, prefix string, q url.Values) ([]kvPair, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("recurse", "")
	code, body, err := c.rawDo("GET", kvPath(prefix), q, nil)
	if err == nil && code == http.StatusNotFound {
		return nil, nil
	}
	var pairs []kvPair
	return pairs, decodeOK(code, body, err, &pairs)
}

// printKVDetailed prints the fields in Consul's order, aligned.
func printKVDetailed(w io.Writer, p kvPair) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "CreateIndex\t%d\n", p.CreateIndex)
	fmt.Fprintf(tw, "Flags\t%d\n", p.Flags)
	fmt.Fprintf(tw, "Key\t%s\n", p.Key)
	fmt.Fprintf(tw, "LockIndex\t%d\n", p.LockIndex)
	fmt.Fprintf(tw, "ModifyIndex\t%d\n", p.ModifyIndex)
	fmt.Fprintf(tw, "Session\t%s\n", orDash(p.Session))
	fmt.Fprintf(tw, "Value\t%s\n", p.Value)
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// casFlags registers -cas and -modify-index, shared by put and delete.
type casFlags struct {
	cas         *bool
	modifyIndex *uint64
}

func (cf casFlags) query(q url.Values) {
	if *cf.cas {
		q.Set("cas", strconv.FormatUint(*cf.modifyIndex, 10))
	}
}

func runKVPut(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("kv put", "Writes a value: roster kv put [options] KEY [DATA|@file|-].", stderr)
	flags := fs.Uint64("flags", 0, "Opaque unsigned integer stored with the key.")
	b64 := fs.Bool("base64", false, "DATA is base64; decode it before writing.")
	cf := casFlags{fs.Bool("cas", false, "Write only if the key's ModifyIndex equals -modify-index (0: only if absent)."),
		fs.Uint64("modify-index", 0, "The ModifyIndex -cas compares against.")}
	lf := lockFlags{fs.Bool("acquire", false, "Acquire the key's lock for -session (without -session, a new session with a 15s TTL)."),
		fs.Bool("release", false, "Release the key's lock held by -session."),
		fs.String("session", "", "Session ID for -acquire and -release.")}
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if err := lf.check(*cf.cas); err != nil {
		fmt.Fprintf(stderr, "Error! %v\n", err)
		return 1
	}
	a := fs.Args()
	if len(a) == 0 {
		fmt.Fprintln(stderr, "Error! Missing KEY argument")
		return 1
	}
	if len(a) > 2 {
		fmt.Fprintf(stderr, "Too many arguments (expected 1 or 2, got %d)\n", len(a))
		return 1
	}
	key, _ := oneKeyArg(a[:1], false, stderr)
	if key == "" {
		return 1
	}
	var raw string
	if len(a) == 2 {
		raw = a[1]
	}
	data, err := readData(raw, *b64)
	if err != nil {
		fmt.Fprintf(stderr, "Error! %v\n", err)
		return 1
	}
	q := url.Values{}
	if *flags != 0 {
		q.Set("flags", strconv.FormatUint(*flags, 10))
	}
	cf.query(q)
	c := client()
	if *lf.acquire || *lf.release {
		return kvPutLock(c, lf, key, q, data, stdout, stderr)
	}
	code, body, err := c.rawDo("PUT", kvPath(key), q, data)
	if err == nil && code/100 != 2 {
		err = statusErr(code, body)
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error! Failed writing data: %v\n", err)
		return 1
	}
	if !strings.Contains(string(body), "true") {
		fmt.Fprintf(stderr, "Error! Did not write to %s: CAS failed\n", key)
		return 1
	}
	fmt.Fprintf(stdout, "Success! Data written to: %s\n", key)
	return 0
}

// readData resolves a value argument as Consul does: @file reads the
// file, - reads stdin, anything else is the value itself.
func readData(arg string, isBase64 bool) ([]byte, error) {
	var data []byte
	switch {
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("Failed to read file: %v", err)
		}
		data = b
	case arg == "-":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, fmt.Errorf("Failed to read stdin: %v", err)
		}
		data = b
	default:
		data = []byte(arg)
	}
	if !isBase64 {
		return data, nil
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("Failed to base64 decode data: %v", err)
	}
	return dec, nil
}

func runKVDelete(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("kv delete", "Deletes a key, or every key under a prefix with -recurse.", stderr)
	recurse := fs.Bool("recurse", false, "Delete every key under the prefix.")
	cf := casFlags{fs.Bool("cas", false, "Delete only if the key's ModifyIndex equals -modify-index."),
		fs.Uint64("modify-index", 0, "The ModifyIndex -cas compares against.")}
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if *recurse && *cf.cas {
		fmt.Fprintln(stderr, "Cannot specify both -cas and -recurse!")
		return 1
	}
	key, ok := oneKeyArg(fs.Args(), *recurse, stderr)
	if !ok {
		return 1
	}
	q := url.Values{}
	if *recurse {
		q.Set("recurse", "")
	}
	cf.query(q)
	code, body, err := client().rawDo("DELETE", kvPath(key), q, nil)
	if err == nil && code/100 != 2 {
		err = statusErr(code, body)
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error! Failed deleting data: %v\n", err)
		return 1
	}
	switch {
	case !strings.Contains(string(body), "true"):
		fmt.Fprintf(stderr, "Error! Did not delete key %s: CAS failed\n", key)
		return 1
	case *recurse:
		fmt.Fprintf(stdout, "Success! Deleted keys with prefix: %s\n", key)
	default:
		fmt.Fprintf(stdout, "Success! Deleted key: %s\n", key)
	}
	return 0
}
