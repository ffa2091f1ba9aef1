package catalog

import (
	"errors"
	"testing"
	"unicode/utf8"
)

var filterFuzzSeeds = []string{
	`Service.Service == web`,
	`Service.Tags contains primary and not Node.Meta.env == staging`,
	`"web" in Service.Tags or Checks.Status != passing`,
	"Node.Meta[`rack-id`] matches `^r1[0-9]$`",
	`(Service.Port == 8080 or Service.Port == "80") and Service.Weight == 3`,
	`Checks.0.Status is not empty and Extra.nested.k == v`,
	`x not in Labels and 1 in Counts and Counts.1 == one`,
	`not not Service.EnableTagOverride != false`,
	`Service.Ratio == 0.1 and Service.Delta == -3 and Service.Big == 18446744073709551615`,
	`Extra.list contains a and Extra.num.x == 1`,
	`((a == 1)`, `a == "\x`, `a matches "(("`, `is is empty`, `not in in`,
}

// FuzzCompileFilter: CompileFilter never panics, reports every failure as a
// *FilterError whose column lies inside the expression, and the canonical
// form of a parsed expression parses back to the same tree.
func FuzzCompileFilter(f *testing.F) {
	for _, s := range filterFuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		flt, err := CompileFilter(expr)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) {
				t.Fatalf("CompileFilter(%q) error %v is not a *FilterError", expr, err)
			}
			if fe.Column < 1 || fe.Column > utf8.RuneCountInString(expr)+1 {
				t.Fatalf("CompileFilter(%q) error column %d outside the expression", expr, fe.Column)
			}
			return
		}
		canonical := flt.root.String()
		again, err := CompileFilter(canonical)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canonical, expr, err)
		}
		if got := again.root.String(); got != canonical {
			t.Fatalf("canonical form of %q is unstable: %q then %q", expr, canonical, got)
		}
	})
}

// FuzzFilterMatch: for any expression and any data, Validate, Match,
// FilterSlice and FilterMap never panic, and Match fails whenever Validate
// has rejected the expression for that type.
func FuzzFilterMatch(f *testing.F) {
	for _, s := range filterFuzzSeeds {
		f.Add(s, "web", "env", 8080)
	}
	f.Fuzz(func(t *testing.T, expr, name, key string, port int) {
		flt, err := CompileFilter(expr)
		if err != nil {
			return
		}
		entry := filterTestFixture()
		entry.Service.Service = name
		entry.Service.Port = port
		entry.Node.Meta[key] = name
		entry.Extra[key] = []any{name, port, map[string]any{key: name}, nil}
		entry.Labels = append(entry.Labels, name, port, &name)
		items := []filterTestEntry{entry, {}, {Checks: []filterTestCheck{{Status: name}}}}

		validateErr := flt.Validate(filterTestEntry{})
		for i := range items {
			if _, err := flt.Match(items[i]); validateErr != nil && err == nil {
				t.Fatalf("Validate(%q) failed (%v) but Match succeeded", expr, validateErr)
			}
			_, _ = flt.Match(&items[i])
		}
		_, _ = FilterSlice(flt, items)
		_, _ = FilterSlice(flt, []*filterTestEntry{&items[0], nil})
		_, _ = FilterMap(flt, map[string]filterTestEntry{key: entry})
		_, _ = flt.Match(entry.Extra)
		_, _ = flt.Match(entry.Labels)
	})
}
