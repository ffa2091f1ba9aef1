package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kvRun runs `roster kv <args>` against addr and fails the test unless
// the exit code is wantCode.
func kvRun(t *testing.T, addr string, wantCode int, args ...string) (stdout, stderr string) {
	t.Helper()
	full := append([]string{"kv", args[0], "-http-addr", addr}, args[1:]...)
	code, out, errOut := runRoster(t, full...)
	if code != wantCode {
		t.Fatalf("roster %v: exit %d, want %d; stdout %q stderr %q", full, code, wantCode, out, errOut)
	}
	return out, errOut
}

func TestKVCmds_PutGetDeleteAgainstADevAgent(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")

	if out, _ := kvRun(t, addr, 0, "put", "app/name", "web"); out != "Success! Data written to: app/name\n" {
		t.Fatalf("put: %q", out)
	}
	file := filepath.Join(t.TempDir(), "v")
	if err := os.WriteFile(file, []byte("from file"), 0o644); err != nil {
		t.Fatal(err)
	}
	kvRun(t, addr, 0, "put", "-flags=7", "app/cfg/file", "@"+file)
	kvRun(t, addr, 0, "put", "-base64", "app/cfg/b64", "aGk=") // "hi"

	if out, _ := kvRun(t, addr, 0, "get", "app/name"); out != "web\n" {
		t.Fatalf("get: %q", out)
	}
	if out, _ := kvRun(t, addr, 0, "get", "-recurse", "app/cfg"); out != "app/cfg/b64:hi\napp/cfg/file:from file\n" {
		t.Fatalf("get -recurse: %q", out)
	}
	if out, _ := kvRun(t, addr, 0, "get", "-keys", "app/"); out != "app/cfg/\napp/name\n" {
		t.Fatalf("get -keys: %q", out)
	}
	out, _ := kvRun(t, addr, 0, "get", "-detailed", "app/cfg/file")
	for _, want := range []string{"Flags", " 7\n", "Key", "app/cfg/file", "ModifyIndex", "Value", "from file"} {
		if !strings.Contains(out, want) {
			t.Fatalf("get -detailed lacks %q:\n%s", want, out)
		}
	}
	modifyIndex := detailedField(t, out, "ModifyIndex")

	// A CAS with a stale index fails and leaves the value; the current one wins.
	if _, errOut := kvRun(t, addr, 1, "put", "-cas", "-modify-index=1", "app/cfg/file", "x"); !strings.Contains(errOut, "Error! Did not write to app/cfg/file: CAS failed") {
		t.Fatalf("stale CAS put: stderr %q", errOut)
	}
	kvRun(t, addr, 0, "put", "-cas", "-modify-index="+modifyIndex, "app/cfg/file", "x")
	if _, errOut := kvRun(t, addr, 1, "delete", "-cas", "-modify-index=1", "app/cfg/file"); !strings.Contains(errOut, "CAS failed") {
		t.Fatalf("stale CAS delete: stderr %q", errOut)
	}

	if out, _ := kvRun(t, addr, 0, "delete", "app/name"); out != "Success! Deleted key: app/name\n" {
		t.Fatalf("delete: %q", out)
	}
	if _, errOut := kvRun(t, addr, 1, "get", "app/name"); errOut != "Error! No key exists at: app/name\n" {
		t.Fatalf("get of a deleted key: stderr %q", errOut)
	}
	if out, _ := kvRun(t, addr, 0, "delete", "-recurse", "app/"); out != "Success! Deleted keys with prefix: app/\n" {
		t.Fatalf("delete -recurse: %q", out)
	}
	if out, _ := kvRun(t, addr, 0, "get", "-recurse", "app/"); out != "" {
		t.Fatalf("get -recurse after delete -recurse: %q", out)
	}
}

// detailedField is one value of `kv get -detailed` output.
func detailedField(t *testing.T, out, name string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	t.Fatalf("no %s in:\n%s", name, out)
	return ""
}

func TestKVCmds_ExportImportRoundTrip(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")
	kvRun(t, addr, 0, "put", "-flags=3", "x/one", "1")
	kvRun(t, addr, 0, "put", "x/two", "two\nlines")
	out, _ := kvRun(t, addr, 0, "export", "x/")
	var entries []kvEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 2 {
		t.Fatalf("export = %q (%v)", out, err)
	}
	if entries[0] != (kvEntry{Key: "x/one", Flags: 3, Value: "MQ=="}) {
		t.Fatalf("export[0] = %+v", entries[0])
	}
	dump := filepath.Join(t.TempDir(), "dump.json")
	if err := os.WriteFile(dump, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	kvRun(t, addr, 0, "delete", "-recurse", "x/")
	if out, _ := kvRun(t, addr, 0, "import", "@"+dump); out != "Imported: x/one\nImported: x/two\n" {
		t.Fatalf("import: %q", out)
	}
	if again, _ := kvRun(t, addr, 0, "export", "x/"); again != out {
		t.Fatalf("export after import differs:\n%s\nvs\n%s", again, out)
	}
	if _, errOut := kvRun(t, addr, 1, "import", `[{"key":"y","value":"not base64!"}]`); !strings.Contains(errOut, "base64") {
		t.Fatalf("import of bad base64: stderr %q", errOut)
	}
}

func TestKVCmds_UsageErrorsExitLikeConsul(t *testing.T) {
	// No agent is needed: each is rejected before any request is sent.
	addr := "127.0.0.1:1"
	cases := []struct {
		code int
		args []string
		want string
	}{
		{1, []string{"get"}, "Error! Missing KEY argument"},
		{1, []string{"get", "a", "b"}, "Too many arguments"},
		{1, []string{"get", "/a"}, "must not begin with a '/'"},
		{1, []string{"put"}, "Error! Missing KEY argument"},
		{1, []string{"put", "-base64", "k", "%%%"}, "base64"},
		{1, []string{"delete", "-recurse", "-cas", "p"}, "Cannot specify both -cas and -recurse!"},
		{2, []string{"get", "-nosuchflag", "k"}, "-nosuchflag"},
	}
	for _, tc := range cases {
		if _, errOut := kvRun(t, addr, tc.code, tc.args...); !strings.Contains(errOut, tc.want) {
			t.Errorf("kv %v: stderr %q, want %q", tc.args, errOut, tc.want)
		}
	}
	if code, _, _ := runRoster(t, "kv", "frobnicate"); code != 2 {
		t.Fatalf("kv frobnicate: exit %d, want 2", code)
	}
	// An unreachable agent is an error naming the address.
	if _, errOut := kvRun(t, addr, 1, "get", "k"); !strings.Contains(errOut, "cannot reach the agent") {
		t.Fatalf("unreachable agent: stderr %q", errOut)
	}
}

func TestKVCmds_DashReadsTheValueAndTheImportFromStdin(t *testing.T) {
	a := startDevAgent(t)
	addr := strings.TrimPrefix(a.base, "http://")
	withStdin := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(rosterBin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("roster %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	withStdin("piped value", "kv", "put", "-http-addr", addr, "p/one", "-")
	if out, _ := kvRun(t, addr, 0, "get", "p/one"); out != "piped value\n" {
		t.Fatalf("get of a piped value: %q", out)
	}
	withStdin(`[{"key":"p/two","flags":9,"value":"Mg=="}]`, "kv", "import", "-http-addr", addr, "-")
	out, _ := kvRun(t, addr, 0, "get", "-detailed", "p/two")
	if detailedField(t, out, "Flags") != "9" || detailedField(t, out, "Value") != "2" {
		t.Fatalf("get -detailed after an import from stdin:\n%s", out)
	}
}
