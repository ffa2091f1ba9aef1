package main

import (
	"os/exec"
	"strings"
	"testing"
)

// importRules is DESIGN.md's layering, checked on every package's
// non-test imports: the roster packages each may import. internal/ leaves
// are open to all but import no roster package themselves, and nothing
// outside cmd/ imports cmd/.
var importRules = map[string][]string{
	"roster/raft":      {},
	"roster/swim":      {},
	"roster/catalog":   {"roster/raft"},
	"roster/rpc":       {"roster/raft", "roster/catalog"},
	"roster/httpapi":   {"roster/catalog", "roster/rpc"},
	"roster/dnsserver": {"roster/catalog", "roster/rpc"},
}

// ruleFor finds the rule of pkg: its own, or its top-level package's.
func ruleFor(pkg string) (top string, allowed []string, ok bool) {
	for top, allowed := range importRules {
		if pkg == top || strings.HasPrefix(pkg, top+"/") {
			return top, allowed, true
		}
	}
	return "", nil, false
}

func TestImports_FollowTheLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "roster/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			if !strings.HasPrefix(imp, "roster/") {
				continue
			}
			if msg := importViolation(pkg, imp); msg != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, msg)
			}
		}
	}
}

func importViolation(pkg, imp string) string {
	switch {
	case strings.HasPrefix(pkg, "roster/internal/"):
		return "internal/ leaves import no other roster package"
	case strings.HasPrefix(imp, "roster/cmd/") && !strings.HasPrefix(pkg, "roster/cmd/"):
		return "nothing outside cmd/ imports cmd/"
	case strings.HasPrefix(imp, "roster/internal/"):
		return ""
	}
	top, allowed, ok := ruleFor(pkg)
	if !ok || strings.HasPrefix(imp, top+"/") || imp == top {
		return ""
	}
	for _, a := range allowed {
		if imp == a || strings.HasPrefix(imp, a+"/") {
			return ""
		}
	}
	return "not allowed by DESIGN.md's import rules (allowed: " + strings.Join(allowed, ", ") + ")"
}

func TestImports_ViolationsAreCaught(t *testing.T) {
	cases := map[[2]string]bool{
		{"roster/httpapi", "roster/raft"}:                  true,
		{"roster/httpapi/client", "roster/swim"}:           true,
		{"roster/catalog", "roster/rpc"}:                   true,
		{"roster/internal/fanout", "roster/raft"}:          true,
		{"roster/rpc", "roster/cmd/roster/internal/agent"}: true,
		{"roster/rpc", "roster/catalog"}:                   false,
		{"roster/httpapi/client", "roster/catalog"}:        false,
		{"roster/cmd/roster", "roster/swim"}:               false,
	}
	for c, bad := range cases {
		if got := importViolation(c[0], c[1]) != ""; got != bad {
			t.Errorf("%s -> %s: violation %v, want %v", c[0], c[1], got, bad)
		}
	}
}
