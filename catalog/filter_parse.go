package catalog

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// This file is a recursive-descent parser for go-bexpr's grammar, one
// function per precedence level (loosest first):
//
//	expr    = or
//	or      = and { "or" and }
//	and     = unary { "and" unary }
//	unary   = "not" unary | primary
//	primary = "(" expr ")" | match
//	match   = selector ("==" | "!=") value
//	        | selector "is" ["not"] "empty"
//	        | selector ["not"] ("contains" | "matches") value
//	        | value ["not"] "in" selector
//	selector = word { "." word | "." index | "[" string "]" }
//	value    = string | number | word-path (a bare word, taken as text)
//
// So `a == 1 or b == 2 and not c == 3` is `a == 1 or (b == 2 and (not c == 3))`,
// the "standard precedence" Consul's filtering docs promise.

// filterMaxDepth bounds nesting of parentheses and "not" so that a hostile
// expression cannot exhaust the stack; real filters nest a handful deep.
const filterMaxDepth = 100

// filterOp is a match operator. contains is the same operator as in with the
// operands swapped, exactly as in go-bexpr.
type filterOp int

const (
	filterOpEqual filterOp = iota
	filterOpNotEqual
	filterOpIn
	filterOpNotIn
	filterOpIsEmpty
	filterOpIsNotEmpty
	filterOpMatches
	filterOpNotMatches
)

func (op filterOp) String() string {
	return [...]string{"==", "!=", "in", "not in", "is empty", "is not empty", "matches", "not matches"}[op]
}

// negated reports whether op is the negation of a positive operator;
// evaluation computes the positive form and flips it.
func (op filterOp) negated() bool {
	return op == filterOpNotEqual || op == filterOpNotIn || op == filterOpIsNotEmpty || op == filterOpNotMatches
}

// missingResult is the answer when the selector leads to nothing (absent
// map key, nil pointer or interface, out-of-range index): nothing equals,
// contains or matches a missing value, and a missing value is empty. These
// are go-bexpr's "not present dispositions".
func (op filterOp) missingResult() bool {
	switch op {
	case filterOpNotEqual, filterOpNotIn, filterOpIsEmpty, filterOpNotMatches:
		return true
	}
	return false
}

// filterNode is a node of the parsed expression. plan specialises the node
// for one Go type; see filter_plan.go.
type filterNode interface {
	plan(t reflect.Type) (filterEvalFn, error)
	String() string
}

type filterAnd struct{ left, right filterNode }

type filterOr struct{ left, right filterNode }

type filterNot struct{ operand filterNode }

// filterSegment is one step of a selector: a field or map key name, or a
// numeric slice index (Checks.0.Status).
type filterSegment struct {
	name   string
	index  bool
	offset int
}

// filterMatch is a leaf: one operator applied to the value a selector picks.
type filterMatch struct {
	expr     string // whole expression, for positioned errors
	selector []filterSegment
	offset   int // of the selector
	op       filterOp
	lit      *filterLiteral // nil for is (not) empty
	re       *regexp.Regexp // compiled once, for (not) matches

	// dynamic caches plans for selector suffixes reached through interface
	// values, keyed by filterDynamicKey; see planInterface.
	dynamic sync.Map
}

func (n *filterAnd) String() string { return "(" + n.left.String() + " and " + n.right.String() + ")" }
func (n *filterOr) String() string  { return "(" + n.left.String() + " or " + n.right.String() + ")" }

// String renders the operand in its own parentheses so that a selector
// named like an operator ("is", "in") cannot be misread after the "not".
func (n *filterNot) String() string { return "(not (" + n.operand.String() + "))" }

// String renders the match in a canonical form that parses back to the same
// tree: values always quoted, "contains" written as "in", map keys that are
// not plain words in ["..."] form.
func (n *filterMatch) String() string {
	var sel strings.Builder
	for i, seg := range n.selector {
		switch {
		case i == 0:
			sel.WriteString(seg.name)
		case seg.index || filterIsPlainWord(seg.name):
			sel.WriteString("." + seg.name)
		default:
			sel.WriteString("[" + strconv.Quote(seg.name) + "]")
		}
	}
	switch {
	case n.lit == nil:
		return sel.String() + " " + n.op.String()
	case n.op == filterOpIn || n.op == filterOpNotIn:
		return strconv.Quote(n.lit.raw) + " " + n.op.String() + " " + sel.String()
	default:
		return sel.String() + " " + n.op.String() + " " + strconv.Quote(n.lit.raw)
	}
}

// filterIsPlainWord reports whether s lexes as a single word token.
func filterIsPlainWord(s string) bool {
	if s == "" || !filterIsLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !filterIsWordByte(s[i]) {
			return false
		}
	}
	return true
}

// selectorText renders the first n segments as a dotted path, for messages.
func (n *filterMatch) selectorText(count int) string {
	var b strings.Builder
	for i, seg := range n.selector[:count] {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg.name)
	}
	return b.String()
}

// filterParser holds the token stream; pos indexes the next token.
type filterParser struct {
	expr  string
	toks  []filterToken
	pos   int
	depth int
}

func filterParse(expr string) (filterNode, error) {
	toks, err := filterLex(expr)
	if err != nil {
		return nil, err
	}
	p := &filterParser{expr: expr, toks: toks}
	if p.peek().kind == filterTokEOF {
		return nil, filterErrorf(expr, 0, "empty expression").because("write e.g. Service == web")
	}
	node, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != filterTokEOF {
		if t.kind == filterTokRParen {
			return nil, p.errAt(t, `unmatched ")"`)
		}
		return nil, p.errAt(t, "unexpected %s after a complete expression", t.describe()).because("join expressions with and / or")
	}
	return node, nil
}

func (p *filterParser) peek() filterToken { return p.toks[p.pos] }

func (p *filterParser) peekAt(ahead int) filterToken {
	if p.pos+ahead >= len(p.toks) {
		return p.toks[len(p.toks)-1] // EOF
	}
	return p.toks[p.pos+ahead]
}

func (p *filterParser) next() filterToken {
	t := p.toks[p.pos]
	if t.kind != filterTokEOF {
		p.pos++
	}
	return t
}

// isWord reports whether t is the bare word w (keywords are case-sensitive,
// as in go-bexpr).
func isFilterWord(t filterToken, w string) bool { return t.kind == filterTokWord && t.text == w }

func (p *filterParser) errAt(t filterToken, format string, args ...any) *FilterError {
	return filterErrorf(p.expr, t.offset, format, args...)
}

func (p *filterParser) parseOr() (filterNode, error) {
	left, err := p.parseAnd()
	// Bounded: each round consumes at least the "or" token.
	for err == nil && isFilterWord(p.peek(), "or") {
		p.next()
		var right filterNode
		if right, err = p.parseAnd(); err == nil {
			left = &filterOr{left: left, right: right}
		}
	}
	return left, err
}

func (p *filterParser) parseAnd() (filterNode, error) {
	left, err := p.parseUnary()
	for err == nil && isFilterWord(p.peek(), "and") {
		p.next()
		var right filterNode
		if right, err = p.parseUnary(); err == nil {
			left = &filterAnd{left: left, right: right}
		}
	}
	return left, err
}

func (p *filterParser) parseUnary() (filterNode, error) {
	if p.depth >= filterMaxDepth {
		return nil, p.errAt(p.peek(), "expression nested deeper than %d levels", filterMaxDepth)
	}
	p.depth++
	defer func() { p.depth-- }()
	if isFilterWord(p.peek(), "not") && p.notIsUnary() {
		p.next()
		operand, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &filterNot{operand: operand}, nil
	}
	if t := p.peek(); t.kind == filterTokLParen {
		p.next()
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.peek().kind != filterTokRParen {
			return nil, p.errAt(t, `unmatched "("`).because(`expected ")" before %s`, p.peek().describe())
		}
		p.next()
		return inner, nil
	}
	return p.parseMatch()
}

// notIsUnary decides whether a leading "not" negates what follows or is
// itself a selector or value (a map key called "not", or `not in Tags`
// meaning the value "not"). It is a value or selector when an operator
// follows it directly.
func (p *filterParser) notIsUnary() bool {
	t := p.peekAt(1)
	switch t.kind {
	case filterTokEq, filterTokNe, filterTokDot, filterTokLBracket, filterTokEOF:
		return false
	case filterTokWord:
		switch t.text {
		case "is", "in", "contains", "matches":
			return false
		}
	}
	return true
}

// parseMatch parses one match expression. It starts with either a selector
// (most operators) or a value (`"x" in Tags`); a bare word can be either, so
// the operator that follows decides.
func (p *filterParser) parseMatch() (filterNode, error) {
	start := p.peek()
	switch start.kind {
	case filterTokString, filterTokNumber:
		p.next()
		return p.parseInSelector(start, start.text, p.peek())
	case filterTokWord:
		segs, err := p.parsePath()
		if err != nil {
			return nil, err
		}
		return p.parseOperator(start, segs)
	case filterTokEOF:
		return nil, p.errAt(start, "expected an expression, found the end").because("the filter is incomplete")
	default:
		return nil, p.errAt(start, "expected a selector or value, found %s", start.describe())
	}
}

// parseOperator parses what follows a word path at start.
func (p *filterParser) parseOperator(start filterToken, segs []filterSegment) (filterNode, error) {
	m := &filterMatch{expr: p.expr, selector: segs, offset: start.offset}
	t := p.peek()
	switch {
	case t.kind == filterTokEq || t.kind == filterTokNe:
		p.next()
		m.op = filterOpEqual
		if t.kind == filterTokNe {
			m.op = filterOpNotEqual
		}
		return p.parseValue(m, t)
	case isFilterWord(t, "is"):
		return p.parseIsEmpty(m)
	case isFilterWord(t, "contains"), isFilterWord(t, "matches"):
		p.next()
		m.op = filterOpIn
		if t.text == "matches" {
			m.op = filterOpMatches
		}
		return p.parseValue(m, t)
	case isFilterWord(t, "in"):
		return p.parseInSelector(start, filterJoinSegments(segs), t)
	case isFilterWord(t, "not"):
		return p.parseNegatedOperator(start, m)
	}
	return nil, p.errAt(t, "expected an operator after %q, found %s", filterJoinSegments(segs), t.describe()).
		because("operators are ==, !=, is empty, is not empty, in, not in, contains, not contains, matches, not matches")
}

// parseNegatedOperator handles "not in", "not contains" and "not matches"
// once the selector (or value, for "not in") has been read.
func (p *filterParser) parseNegatedOperator(start filterToken, m *filterMatch) (filterNode, error) {
	notTok := p.next()
	t := p.peek()
	switch {
	case isFilterWord(t, "contains"):
		p.next()
		m.op = filterOpNotIn
		return p.parseValue(m, t)
	case isFilterWord(t, "matches"):
		p.next()
		m.op = filterOpNotMatches
		return p.parseValue(m, t)
	case isFilterWord(t, "in"):
		node, err := p.parseInSelector(start, filterJoinSegments(m.selector), t)
		if err == nil {
			node.(*filterMatch).op = filterOpNotIn
		}
		return node, err
	}
	return nil, p.errAt(t, `expected "in", "contains" or "matches" after %q`, notTok.text)
}

// parseIsEmpty parses `is empty` / `is not empty` after a selector.
func (p *filterParser) parseIsEmpty(m *filterMatch) (filterNode, error) {
	p.next() // "is"
	m.op = filterOpIsEmpty
	if isFilterWord(p.peek(), "not") {
		p.next()
		m.op = filterOpIsNotEmpty
	}
	if t := p.peek(); !isFilterWord(t, "empty") {
		return nil, p.errAt(t, `expected "empty" after "is", found %s`, t.describe())
	}
	p.next()
	return m, nil
}

// parseInSelector parses `in <selector>`: value has been read at valueTok
// and the parser stands on inTok ("in"). The caller flips the operator for
// "not in".
func (p *filterParser) parseInSelector(valueTok filterToken, value string, inTok filterToken) (filterNode, error) {
	if !isFilterWord(inTok, "in") && !(isFilterWord(inTok, "not") && isFilterWord(p.peekAt(1), "in")) {
		return nil, p.errAt(inTok, `expected "in" or "not in" after the value %q`, value).
			because(`a quoted or numeric value must be followed by "in <selector>"; selectors come first in other matches`)
	}
	op := filterOpIn
	if isFilterWord(p.next(), "not") {
		p.next()
		op = filterOpNotIn
	}
	start := p.peek()
	if start.kind != filterTokWord {
		return nil, p.errAt(start, `expected a selector after "in", found %s`, start.describe())
	}
	segs, err := p.parsePath()
	if err != nil {
		return nil, err
	}
	return &filterMatch{
		expr: p.expr, selector: segs, offset: start.offset, op: op,
		lit: newFilterLiteral(value, valueTok.offset),
	}, nil
}

// parseValue reads the value after operator token opTok into m.
func (p *filterParser) parseValue(m *filterMatch, opTok filterToken) (filterNode, error) {
	t := p.peek()
	var raw string
	switch t.kind {
	case filterTokString, filterTokNumber:
		p.next()
		raw = t.text
	case filterTokWord:
		segs, err := p.parsePath()
		if err != nil {
			return nil, err
		}
		raw = filterJoinSegments(segs)
	default:
		return nil, p.errAt(t, "expected a value after %q, found %s", opTok.text, t.describe())
	}
	m.lit = newFilterLiteral(raw, t.offset)
	if m.op == filterOpMatches || m.op == filterOpNotMatches {
		re, err := regexp.Compile(raw)
		if err != nil {
			return nil, p.errAt(t, "invalid regular expression %q", raw).because("%v", err)
		}
		m.re = re
	}
	return m, nil
}

// parsePath reads word { "." word | "." index | "[" string "]" }.
func (p *filterParser) parsePath() ([]filterSegment, error) {
	first := p.next()
	segs := []filterSegment{{name: first.text, offset: first.offset}}
	// Bounded: every round consumes at least one token or returns.
	for {
		switch p.peek().kind {
		case filterTokDot:
			p.next()
			t := p.next()
			if t.kind != filterTokWord && t.kind != filterTokIndex {
				return nil, p.errAt(t, `expected a field name or index after ".", found %s`, t.describe())
			}
			segs = append(segs, filterSegment{name: t.text, index: t.kind == filterTokIndex, offset: t.offset})
		case filterTokLBracket:
			open := p.next()
			t := p.next()
			if t.kind != filterTokString {
				return nil, p.errAt(t, `expected a quoted map key inside [...], found %s`, t.describe()).because(`write e.g. Meta["env"]`)
			}
			if closing := p.next(); closing.kind != filterTokRBracket {
				return nil, p.errAt(closing, `expected "]" to close the index opened at column %d`, filterColumn(p.expr, open.offset))
			}
			segs = append(segs, filterSegment{name: t.text, offset: open.offset})
		default:
			return segs, nil
		}
	}
}

func filterJoinSegments(segs []filterSegment) string {
	names := make([]string, len(segs))
	for i, s := range segs {
		names[i] = s.name
	}
	return strings.Join(names, ".")
}
