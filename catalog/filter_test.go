package catalog

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// The test types mimic the shapes Consul filters (a health service entry:
// node, service, checks) plus every shape the evaluator must handle:
// pointers, nil pointers, maps with string and int keys, interface values,
// embedded structs, bexpr tags and unexported fields.

type filterTestNode struct {
	Node    string
	Address string
	Meta    map[string]string
}

type filterTestService struct {
	ID                string
	Service           string
	Tags              []string
	Port              int
	Weight            *int
	Meta              map[string]string
	EnableTagOverride bool
	Score             float64
	Ratio             float32
	Small             uint8
	Big               uint64
	Delta             int16
}

type filterTestCheck struct {
	CheckID     string
	Status      string
	ServiceTags []string
}

type filterTestEmbedded struct{ Region string }

type filterTestEmbeddedPtr struct{ Zone string }

type filterTestEntry struct {
	Node      *filterTestNode
	Service   *filterTestService
	Checks    []filterTestCheck
	CheckPtrs []*filterTestCheck
	Extra     map[string]any
	Labels    []any
	Counts    map[int]string
	Alias     string `bexpr:"Nick,Nickname"`
	Secret    string `bexpr:"-"`
	hidden    string
	filterTestEmbedded
	*filterTestEmbeddedPtr
}

func filterTestFixture() filterTestEntry {
	weight := 3
	return filterTestEntry{
		Node: &filterTestNode{Node: "node-1", Address: "10.0.0.1",
			Meta: map[string]string{"env": "prod", "rack-id": "r12"}},
		Service: &filterTestService{
			ID: "web-1", Service: "web", Tags: []string{"primary", "v2"}, Port: 8080,
			Weight: &weight, Meta: map[string]string{"version": "1.2"}, EnableTagOverride: true,
			Score: 2.5, Ratio: 0.1, Small: 7, Big: 18446744073709551615, Delta: -3,
		},
		Checks: []filterTestCheck{
			{CheckID: "serfHealth", Status: "passing"},
			{CheckID: "web-check", Status: "critical", ServiceTags: []string{"primary"}},
		},
		CheckPtrs: []*filterTestCheck{nil, {CheckID: "c1", Status: "warning"}},
		Extra: map[string]any{
			"num": 3, "str": "hello", "list": []any{"a", 2},
			"nested": map[string]any{"k": "v"},
		},
		Labels:             []any{"x", 5, true, nil},
		Counts:             map[int]string{1: "one"},
		Alias:              "ali",
		Secret:             "s",
		hidden:             "h",
		filterTestEmbedded: filterTestEmbedded{Region: "eu"},
	}
}

type filterTestCase struct {
	expr string
	want bool
}

// filterRunCases compiles, validates and matches every case against v.
func filterRunCases(t *testing.T, v any, cases []filterTestCase) {
	t.Helper()
	for _, tc := range cases {
		f, err := CompileFilter(tc.expr)
		if err != nil {
			t.Errorf("CompileFilter(%q): %v", tc.expr, err)
			continue
		}
		if err := f.Validate(v); err != nil {
			t.Errorf("Validate(%q): %v", tc.expr, err)
			continue
		}
		got, err := f.Match(v)
		if err != nil {
			t.Errorf("Match(%q): %v", tc.expr, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Match(%q) = %v, want %v (parsed as %s)", tc.expr, got, tc.want, f.root)
		}
	}
}

func TestFilter_EqualityCoercesLiteralToFieldKind(t *testing.T) {
	filterRunCases(t, filterTestFixture(), []filterTestCase{
		{`Service.Service == web`, true},
		{`Service.Service == "web"`, true},
		{"Service.Service == `web`", true},
		{`Service.Service != web`, false},
		{`Service.Service == api`, false},
		{`Service.Service != "api"`, true},
		{`Service.Port == 8080`, true},
		{`Service.Port == "8080"`, true},
		{`Service.Port != 8080`, false},
		{`Service.Port == 80`, false},
		{`Service.Weight == 3`, true},
		{`Service.Score == 2.5`, true},
		{`Service.Ratio == 0.1`, true},
		{`Service.Small == 7`, true},
		{`Service.Big == 18446744073709551615`, true},
		{`Service.Delta == -3`, true},
		{`Service.EnableTagOverride == true`, true},
		{`Service.EnableTagOverride == false`, false},
		{`Service.EnableTagOverride != false`, true},
		{`Node.Address == "10.0.0.1"`, true},
	})
}

func TestFilter_EmptinessContainsAndMatches(t *testing.T) {
	filterRunCases(t, filterTestFixture(), []filterTestCase{
		{`Service.Tags contains primary`, true},
		{`primary in Service.Tags`, true},
		{`"v3" in Service.Tags`, false},
		{`v3 not in Service.Tags`, true},
		{`Service.Tags not contains primary`, false},
		{`Service.Tags is empty`, false},
		{`Service.Tags is not empty`, true},
		{`Service.Service contains we`, true},
		{`"eb" in Service.Service`, true},
		{`"xyz" not in Service.Service`, true},
		{`Service.Service matches "^w.b$"`, true},
		{"Service.ID matches `^web-[0-9]+$`", true},
		{`Service.ID not matches "^api"`, true},
		{`Service.ID not matches "^web"`, false},
		{`Service.ID is empty`, false},
		{`Node.Meta is not empty`, true},
		{`env in Node.Meta`, true},
		{`prod in Node.Meta`, false},
		{`prod not in Node.Meta`, true},
		{`1 in Counts`, true},
		{`2 in Counts`, false},
	})
}

func TestFilter_MapKeysByDotOrBracket(t *testing.T) {
	filterRunCases(t, filterTestFixture(), []filterTestCase{
		{`Node.Meta.env == prod`, true},
		{`Node.Meta["env"] == "prod"`, true},
		{"Node.Meta[`rack-id`] == r12", true},
		{`Node.Meta["rack-id"] matches "^r1"`, true},
		{`Counts.1 == one`, true},
		{`Counts["1"] == one`, true},
		{`Service.Meta.version == "1.2"`, true},
	})
}

// A missing value (absent key, nil pointer, index out of range) equals,
// contains and matches nothing and is empty: go-bexpr's dispositions.
func TestFilter_MissingValuesUseNotPresentDispositions(t *testing.T) {
	filterRunCases(t, filterTestFixture(), []filterTestCase{
		{`Node.Meta.missing == x`, false},
		{`Node.Meta.missing != x`, true},
		{`Node.Meta.missing is empty`, true},
		{`Node.Meta.missing is not empty`, false},
		{`x in Node.Meta.missing`, false},
		{`x not in Node.Meta.missing`, true},
		{`Node.Meta.missing contains x`, false},
		{`Node.Meta.missing matches ".*"`, false},
		{`Node.Meta.missing not matches ".*"`, true},
		{`Checks.5.Status == passing`, false},
		{`Checks.5.Status != passing`, true},
		{`Zone == x`, false}, // promoted through a nil embedded pointer
		{`Zone != x`, true},
	})
	var noService filterTestEntry
	filterRunCases(t, noService, []filterTestCase{
		{`Service.Service == web`, false},
		{`Service.Service != web`, true},
		{`Service.Tags is empty`, true},
		{`primary in Service.Tags`, false},
		{`Service.Weight == 3`, false},
		{`Node.Meta.env is empty`, true},
		{`Checks.Status == passing`, false},
		{`Checks is empty`, true},
	})
}

// Selectors through a list of structs ask whether ANY element matches, with
// the operator as written (go-bexpr's implicit "any").
func TestFilter_SelectorThroughListMeansAnyElement(t *testing.T) {
	filterRunCases(t, filterTestFixture(), []filterTestCase{
		{`Checks.Status == critical`, true},
		{`Checks.Status == warning`, false},
		{`Checks.Status != passing`, true}, // the critical one
		{`Checks.Status != critical`, true},
		{`Checks.CheckID == serfHealth`, true},
		{`Checks.ServiceTags contains primary`, true},
		{`Checks.ServiceTags contains v2`, false},
		{`Checks.0.Status == passing`, true},
		{`Checks.1.Status == passing`, false},
		{`Checks is not empty`, true},
		{`CheckPtrs.Status == warning`, true}, // nil element skipped as missing
		{`CheckPtrs.Status == passing`, false},
		{`not Checks.Status == warning`, true},
	})
	allPassing := filterTestEntry{Checks: []filterTestCheck{{Status: "passing"}, {Status: "passing"}}}
	filterRunCases(t, allPassing, []filterTestCase{
		{`Checks.Status != passing`, false},
		{`not Checks.Status != passing`, true},
	})
}

func TestFilter_InterfaceValuesResolvedAtMatchTime(t *testing.T) {
	filterRunCases(t, filterTestFixture(), []filterTestCase{
		{`Extra.num == 3`, true},
		{`Extra.num == 4`, false},
		{`Extra.str == hello`, true},
		{`Extra.str contains ell`, true},
		{`a in Extra.list`, true},
		{`2 in Extra.list`, true},
		{`3 in Extra.list`, false},
		{`Extra.nested.k == v`, true},
		{`Extra.nope == v`, false},
		{`x in Labels`, true},
		{`5 in Labels`, true},
		{`true in Labels`, true},
		{`y in Labels`, false},
	})
}

func TestFilter_StructTagsEmbeddingAndVisibility(t *testing.T) {
	filterRunCases(t, filterTestFixture(), []filterTestCase{
		{`Nick == ali`, true},
		{`Nickname == ali`, true},
		{`Region == eu`, true},
	})
	for _, expr := range []string{`Alias == ali`, `Secret == s`, `hidden == h`} {
		f, err := CompileFilter(expr)
		if err != nil {
			t.Fatalf("CompileFilter(%q): %v", expr, err)
		}
		if err := f.Validate(filterTestEntry{}); err == nil {
			t.Errorf("Validate(%q) accepted a field hidden by tag or unexported", expr)
		}
	}
}

func TestFilter_LogicAndPrecedence(t *testing.T) {
	filterRunCases(t, filterTestFixture(), []filterTestCase{
		{`Service.Service == web and Service.Port == 8080`, true},
		{`Service.Service == web and Service.Port == 1`, false},
		{`Service.Service == api or Service.Port == 8080`, true},
		{`Service.Service == api or Service.Port == 1`, false},
		{`not Service.Service == api`, true},
		{`not not Service.Service == web`, true},
		{`(Service.Service == api or Service.Service == web) and Service.Port == 8080`, true},
		{`Service.Service == api and Service.Port == 1 or Service.Port == 8080`, true},
		{`Service.Service == api and (Service.Port == 1 or Service.Port == 8080)`, false},
		{`not Service.Service == web or Service.Port == 8080`, true},
		{`not (Service.Service == web or Service.Port == 8080)`, false},
		{`Service.Service==web`, true},
		{"\tService.Service\n==\r\n web ", true},
		{`(Service.Service == web)`, true},
		{`((Service.Service == web))`, true},
	})
}

func TestFilter_ParseTreeShowsPrecedence(t *testing.T) {
	cases := map[string]string{
		`a == 1 or b == 2 and not c == 3`:   `(a == "1" or (b == "2" and (not (c == "3"))))`,
		`a == 1 and b == 2 or c == 3`:       `((a == "1" and b == "2") or c == "3")`,
		`a == 1 and (b == 2 or c == 3)`:     `(a == "1" and (b == "2" or c == "3"))`,
		`not a == 1 and b == 2`:             `((not (a == "1")) and b == "2")`,
		`a == 1 or b == 2 or c == 3`:        `((a == "1" or b == "2") or c == "3")`,
		`T contains x`:                      `"x" in T`,
		`x not in T`:                        `"x" not in T`,
		`T not contains x`:                  `"x" not in T`,
		`M["a b"].c is not empty`:           `M["a b"].c is not empty`,
		`L.0.S not matches "^a"`:            `L.0.S not matches "^a"`,
		`not == 1`:                          `not == "1"`,
		`x in not`:                          `"x" in not`,
		`Meta.empty is empty`:               `Meta.empty is empty`,
		`v == foo.bar`:                      `v == "foo.bar"`,
		`not not a == 1`:                    `(not ((not (a == "1"))))`,
		`a == -1.5`:                         `a == "-1.5"`,
		`is == 1 and in is not empty`:       `(is == "1" and in is not empty)`,
		`a/b == 1`:                          `a/b == "1"`,
		`a == and`:                          `a == "and"`,
		`"quote\"d" in T`:                   `"quote\"d" in T`,
		"`raw\\n` in T":                     `"raw\\n" in T`,
		`contains contains contains`:        `"contains" in contains`,
		`matches matches matches`:           `matches matches "matches"`,
		`(not (a == 1)) and (not (b == 2))`: `((not (a == "1")) and (not (b == "2")))`,
	}
	for expr, want := range cases {
		f, err := CompileFilter(expr)
		if err != nil {
			t.Errorf("CompileFilter(%q): %v", expr, err)
			continue
		}
		if got := f.root.String(); got != want {
			t.Errorf("CompileFilter(%q) parsed as %s, want %s", expr, got, want)
		}
	}
}

func TestFilter_SyntaxErrorsNamePositionAndProblem(t *testing.T) {
	cases := []struct {
		expr   string
		column int
		msg    string
	}{
		{``, 1, "empty expression"},
		{`   `, 1, "empty expression"},
		{`Service ==`, 11, `expected a value after "=="`},
		{`Service == "abc`, 12, "unterminated string"},
		{"Service == `abc", 12, "unterminated string"},
		{`Service = web`, 9, "unexpected character '='"},
		{`(Service == web`, 1, `unmatched "("`},
		{`Service == web)`, 15, `unmatched ")"`},
		{`Service is web`, 12, `expected "empty" after "is"`},
		{`Service is not`, 15, `expected "empty" after "is"`},
		{`Service web`, 9, "expected an operator"},
		{`Service == web Port == 1`, 16, "after a complete expression"},
		{`Service matches "["`, 17, "invalid regular expression"},
		{`Service == 10.0.0.1`, 12, "invalid number literal"},
		{`Service == 3abc`, 12, "invalid number literal"},
		{`Service == 007`, 12, "invalid number literal"},
		{`Service == -x`, 12, "invalid number literal"},
		{`"x" == Service`, 5, `expected "in" or "not in"`},
		{`"x" in "y"`, 8, `expected a selector after "in"`},
		{`Meta[env] == x`, 6, "expected a quoted map key"},
		{`Meta["env" == x`, 12, `expected "]"`},
		{`Service. == x`, 10, `expected a field name or index after "."`},
		{`Service == web and`, 19, "the filter is incomplete"},
		{`Service == web and )`, 20, "expected a selector or value"},
		{`Service not web`, 13, `expected "in", "contains" or "matches" after "not"`},
		{`Service == "\q"`, 12, "bad escape"},
		{`Service == é`, 12, "unexpected character 'é'"},
		{`é == x or ?`, 1, "unexpected character 'é'"},
		{`()`, 2, "expected a selector or value"},
		{strings.Repeat("(", 200) + "a == 1" + strings.Repeat(")", 200), 101, "nested deeper than 100"},
		{strings.Repeat("not ", 200) + "a == 1", 401, "nested deeper than 100"},
	}
	for _, tc := range cases {
		_, err := CompileFilter(tc.expr)
		var fe *FilterError
		if !errors.As(err, &fe) {
			t.Errorf("CompileFilter(%q) = %v, want a *FilterError", tc.expr, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) || fe.Column != tc.column {
			t.Errorf("CompileFilter(%q) error %q (column %d), want %q at column %d", tc.expr, err, fe.Column, tc.msg, tc.column)
		}
		if want := fmt.Sprintf("at column %d", fe.Column); !strings.HasPrefix(err.Error(), "filter: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("error text %q does not read \"filter: ... %s\"", err, want)
		}
	}
}

func TestFilter_ErrorTextFormat(t *testing.T) {
	_, err := CompileFilter(`Service.ID ==`)
	if got, want := err.Error(), `filter: expected a value after "==", found end of expression at column 14`; got != want {
		t.Errorf("error text = %q, want %q", got, want)
	}
}

// Everything that makes an expression unfit for a type is found by
// Validate, before any value is evaluated, so the HTTP layer can answer 400.
func TestFilter_ValidateRejectsExpressionsThatDoNotFitTheType(t *testing.T) {
	cases := []struct {
		expr   string
		column int
		msg    string
	}{
		{`Service.Nope == x`, 9, `unknown selector "Service.Nope" at column 9: catalog.filterTestService has no field "Nope" (fields: Big, Delta,`},
		{`Nope == x`, 1, `unknown selector "Nope"`},
		{`Service.Tags == x`, 1, `to test membership write`},
		{`Service.Port == abc`, 17, `cannot compare "Service.Port" with "abc" at column 17: not an integer (the field's type is int)`},
		{`Service.Port contains 1`, 1, `"in" cannot be applied to "Service.Port" at column 1: its type is int, and "in" needs a string, list or map`},
		{`Service.Port is empty`, 1, `needs a string, list or map`},
		{`Service.Port matches "1"`, 1, `needs a string`},
		{`Checks contains x`, 1, `select a field of the elements`},
		{`Service.Small == 300`, 18, `out of range for the field's type uint8`},
		{`Service.Big == -1`, 16, `not an unsigned integer`},
		{`Service.Delta == 1.5`, 18, `not an integer`},
		{`Service.Score == x`, 18, `not a number`},
		{`Service.EnableTagOverride == yes`, 30, `write true or false`},
		{`Service.Service.Foo == x`, 17, `unknown selector "Service.Service.Foo" at column 17: "Service.Service" has type string, which has no fields`},
		{`Node == x`, 1, `compares strings, numbers and bools`},
		{`Counts.abc == x`, 8, `the map has int keys`},
		{`Checks.99999999999999999999.Status == x`, 8, `out of range`},
		{`abc in Counts`, 1, `not an integer`},
		{`Service == web and Service.X == 1`, 1, `compares strings, numbers and bools`},
		{`Service.Service == web and Service.X == 1`, 36, `unknown selector "Service.X"`},
	}
	for _, tc := range cases {
		f, err := CompileFilter(tc.expr)
		if err != nil {
			t.Errorf("CompileFilter(%q): %v", tc.expr, err)
			continue
		}
		err = f.Validate(filterTestEntry{})
		var fe *FilterError
		if !errors.As(err, &fe) {
			t.Errorf("Validate(%q) = %v, want a *FilterError", tc.expr, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) || fe.Column != tc.column {
			t.Errorf("Validate(%q) error %q (column %d), want %q at column %d", tc.expr, err, fe.Column, tc.msg, tc.column)
		}
		if _, err := f.Match(filterTestFixture()); err == nil {
			t.Errorf("Match(%q) succeeded after Validate failed", tc.expr)
		}
	}
}

func TestFilter_ValidateAcceptsPointerAndNilSamples(t *testing.T) {
	f, err := CompileFilter(`Service.Service == web`)
	if err != nil {
		t.Fatal(err)
	}
	for _, sample := range []any{filterTestEntry{}, &filterTestEntry{}, (*filterTestEntry)(nil)} {
		if err := f.Validate(sample); err != nil {
			t.Errorf("Validate(%T): %v", sample, err)
		}
	}
	if err := f.Validate(nil); err == nil {
		t.Error("Validate(nil) succeeded, want an error asking for a sample")
	}
	if _, err := f.Match(nil); err == nil {
		t.Error("Match(nil) succeeded, want an error")
	}
	if ok, err := f.Match((*filterTestEntry)(nil)); ok || err != nil {
		t.Errorf("Match(nil *entry) = %v, %v; want false, nil (a missing value)", ok, err)
	}
}

// Selectors through interface values can only be checked when the concrete
// type is seen, so those errors come from Match.
func TestFilter_MatchReportsErrorsBehindInterfaces(t *testing.T) {
	for _, expr := range []string{`Extra.num.x == 1`, `Extra.str == hello and Extra.num == abc`, `Extra.nested.k.z == v`} {
		f, err := CompileFilter(expr)
		if err != nil {
			t.Fatalf("CompileFilter(%q): %v", expr, err)
		}
		if err := f.Validate(filterTestEntry{}); err != nil {
			t.Fatalf("Validate(%q): %v (interface paths cannot be checked up front)", expr, err)
		}
		var fe *FilterError
		if _, err := f.Match(filterTestFixture()); !errors.As(err, &fe) {
			t.Errorf("Match(%q) = %v, want a *FilterError", expr, err)
		}
	}
}

func TestFilter_MatchAcceptsMapsAndPointersAtTheTop(t *testing.T) {
	fx := filterTestFixture()
	filterRunCases(t, &fx, []filterTestCase{{`Service.Service == web`, true}})
	filterRunCases(t, map[string]string{"env": "prod"}, []filterTestCase{
		{`env == prod`, true}, {`other is empty`, true},
	})
	filterRunCases(t, map[string]any{"port": 80}, []filterTestCase{{`port == 80`, true}})
}

func TestFilterSlice_KeepsMatchesInOrderWithoutTouchingInput(t *testing.T) {
	items := []filterTestService{
		{ID: "a", Service: "web", Port: 1},
		{ID: "b", Service: "db", Port: 2},
		{ID: "c", Service: "web", Port: 3},
	}
	f, err := CompileFilter(`Service == web`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FilterSlice(f, items)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Errorf("FilterSlice = %+v, want a and c", got)
	}
	if items[1].ID != "b" || len(items) != 3 {
		t.Errorf("FilterSlice modified its input: %+v", items)
	}
	same, err := FilterSlice(nil, items)
	if err != nil || len(same) != 3 {
		t.Errorf("FilterSlice(nil filter) = %v, %v; want the input unchanged", same, err)
	}
	ptrs := []*filterTestService{&items[0], nil, &items[2]}
	gotPtrs, err := FilterSlice(f, ptrs)
	if err != nil || len(gotPtrs) != 2 {
		t.Errorf("FilterSlice over pointers with a nil = %v, %v; want 2 matches", gotPtrs, err)
	}
	mixed := []any{items[0], &items[1], map[string]any{"Service": "web"}, nil}
	if got, err := FilterSlice(f, mixed); err != nil || len(got) != 2 {
		t.Errorf("FilterSlice over []any = %v, %v; want the struct and the map", got, err)
	}
	bad, _ := CompileFilter(`Nope == 1`)
	if _, err := FilterSlice(bad, items); err == nil {
		t.Error("FilterSlice with an unknown selector succeeded, want an error")
	}
}

func TestFilterMap_FiltersByValue(t *testing.T) {
	services := map[string]filterTestService{
		"web-1": {Service: "web", Tags: []string{"primary"}},
		"web-2": {Service: "web"},
		"db-1":  {Service: "db", Tags: []string{"primary"}},
	}
	f, err := CompileFilter(`Service == web and primary in Tags`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FilterMap(f, services)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["web-1"].Service != "web" {
		t.Errorf("FilterMap = %v, want only web-1", got)
	}
	if len(services) != 3 {
		t.Errorf("FilterMap modified its input")
	}
	if same, err := FilterMap(nil, services); err != nil || len(same) != 3 {
		t.Errorf("FilterMap(nil filter) = %v, %v; want the input unchanged", same, err)
	}
	ptrs := map[string]*filterTestService{"web-1": {Service: "web", Tags: []string{"primary"}}, "nil": nil}
	if got, err := FilterMap(f, ptrs); err != nil || len(got) != 1 || got["web-1"] == nil {
		t.Errorf("FilterMap over pointer values = %v, %v; want only web-1", got, err)
	}
	bad, _ := CompileFilter(`Nope == 1`)
	if _, err := FilterMap(bad, services); err == nil {
		t.Error("FilterMap with an unknown selector succeeded, want an error")
	}
}

// One Filter is shared by concurrent requests' goroutines: the plan caches
// must be safe (run with -race) and give the same answers.
func TestFilter_ConcurrentMatchSharesPlans(t *testing.T) {
	f, err := CompileFilter(`Service.Service == web and Extra.num == 3 and a in Extra.list`)
	if err != nil {
		t.Fatal(err)
	}
	fx := filterTestFixture()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				ok, err := f.Match(fx)
				if err != nil || !ok {
					errs <- fmt.Errorf("Match = %v, %v", ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Planning must terminate on self-referential types instead of recursing.
func TestFilter_SelfReferentialTypesDoNotRecurseForever(t *testing.T) {
	type filterTestList []*filterTestList
	type filterTestTree struct {
		Name     string
		Children []*filterTestTree
	}
	f, _ := CompileFilter(`Name == x`)
	if err := f.Validate(filterTestList{}); err == nil {
		t.Error("Validate on a list of itself succeeded, want a nesting error")
	}
	tree := filterTestTree{Name: "root", Children: []*filterTestTree{{Name: "leaf"}}}
	filterRunCases(t, tree, []filterTestCase{
		{`Children.Name == leaf`, true},
		{`Children.Children.Name == leaf`, false},
		{`Children.Children is empty`, true},
	})
}

func TestFilter_UncompiledFilterFailsInsteadOfPanicking(t *testing.T) {
	var zero Filter
	if _, err := zero.Match(filterTestEntry{}); err == nil {
		t.Error("Match on a zero Filter succeeded, want an error")
	}
	var nilFilter *Filter
	if err := nilFilter.Validate(filterTestEntry{}); err == nil {
		t.Error("Validate on a nil *Filter succeeded, want an error")
	}
}

func TestFilter_StringReturnsExpression(t *testing.T) {
	const expr = `Service == web`
	f, _ := CompileFilter(expr)
	if f.String() != expr {
		t.Errorf("String() = %q, want %q", f.String(), expr)
	}
	if reflect.TypeOf(f.root) == nil {
		t.Error("no parse tree")
	}
}
