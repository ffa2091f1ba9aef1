package catalog

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// This file turns a filter expression into tokens. The lexical rules follow
// go-bexpr's grammar (the language behind Consul's ?filter=):
//
//	word    = [A-Za-z][A-Za-z0-9_/]*      selectors, keywords, bare values
//	number  = -?(0|[1-9][0-9]*)(\.[0-9]+)? must end at whitespace, ")" or EOF
//	index   = [0-9]+                       only right after "." in a selector
//	string  = "..." (Go escapes) | `...`   (raw, no escapes)
//	symbols = == != ( ) [ ] .
//
// Keywords (and, or, not, is, empty, in, contains, matches) are ordinary
// words here; the parser decides from context whether a word is a keyword,
// so a map key may still be called "empty" (Meta.empty).

// filterTokenKind classifies a token.
type filterTokenKind int

const (
	filterTokEOF filterTokenKind = iota
	filterTokWord
	filterTokNumber
	filterTokIndex
	filterTokString
	filterTokEq
	filterTokNe
	filterTokLParen
	filterTokRParen
	filterTokLBracket
	filterTokRBracket
	filterTokDot
)

// filterToken is one lexeme. offset is the byte offset of its first byte in
// the expression; text is the literal source text except for strings,
// where it is the unquoted value.
type filterToken struct {
	kind   filterTokenKind
	text   string
	offset int
}

// describe renders a token for error messages: `"=="`, `word "foo"`.
func (t filterToken) describe() string {
	switch t.kind {
	case filterTokEOF:
		return "end of expression"
	case filterTokString:
		return fmt.Sprintf("string %q", t.text)
	case filterTokNumber, filterTokIndex:
		return fmt.Sprintf("number %s", t.text)
	default:
		return strconv.Quote(t.text)
	}
}

// filterColumn converts a byte offset in expr into a 1-based column counted
// in runes, which is what a person sees in an editor or a URL bar.
func filterColumn(expr string, offset int) int {
	if offset > len(expr) {
		offset = len(expr)
	}
	return utf8.RuneCountInString(expr[:offset]) + 1
}

// filterLex tokenizes the whole expression up front. Expressions are short
// (a URL parameter), so a token slice is simpler than a streaming lexer and
// gives the parser unlimited lookahead.
func filterLex(expr string) ([]filterToken, error) {
	var toks []filterToken
	// Every iteration consumes at least one byte or returns, so the loop is
	// bounded by len(expr).
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case filterIsLetter(c):
			j := i + 1
			for j < len(expr) && filterIsWordByte(expr[j]) {
				j++
			}
			toks = append(toks, filterToken{kind: filterTokWord, text: expr[i:j], offset: i})
			i = j
		case filterIsDigit(c) && len(toks) > 0 && toks[len(toks)-1].kind == filterTokDot:
			// A numeric selector segment (Checks.0.Status) is an index, not
			// a number: "0.Status" must not lex as the float "0." + ...
			j := i + 1
			for j < len(expr) && filterIsDigit(expr[j]) {
				j++
			}
			toks = append(toks, filterToken{kind: filterTokIndex, text: expr[i:j], offset: i})
			i = j
		case filterIsDigit(c) || c == '-':
			tok, err := filterLexNumber(expr, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i += len(tok.text)
		case c == '"' || c == '`':
			tok, end, err := filterLexString(expr, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i = end
		default:
			tok, err := filterLexSymbol(expr, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, tok)
			i += len(tok.text)
		}
	}
	return append(toks, filterToken{kind: filterTokEOF, offset: len(expr)}), nil
}

// filterLexNumber reads -?(0|[1-9][0-9]*)(\.[0-9]+)? at start. As in
// go-bexpr, a number must be followed by whitespace, ")" or the end, so
// "10.0.0.1" and "3abc" are rejected rather than silently split.
func filterLexNumber(expr string, start int) (filterToken, error) {
	i := start
	if expr[i] == '-' {
		i++
	}
	digitsStart := i
	for i < len(expr) && filterIsDigit(expr[i]) {
		i++
	}
	digits := i - digitsStart
	if digits == 0 || (digits > 1 && expr[digitsStart] == '0') {
		return filterToken{}, filterErrorf(expr, start, "invalid number literal %q", filterSnippet(expr, start)).
			because("numbers look like 42, -7 or 0.5; quote anything else")
	}
	if i+1 < len(expr) && expr[i] == '.' && filterIsDigit(expr[i+1]) {
		i++
		for i < len(expr) && filterIsDigit(expr[i]) {
			i++
		}
	}
	if i < len(expr) && !filterEndsNumber(expr[i]) {
		return filterToken{}, filterErrorf(expr, start, "invalid number literal %q", filterSnippet(expr, start)).
			because(`quote values that are not plain numbers, e.g. "10.0.0.1"`)
	}
	return filterToken{kind: filterTokNumber, text: expr[start:i], offset: start}, nil
}

// filterLexString reads a double-quoted (Go escapes) or backtick (raw)
// string starting at start and returns the token and the offset just past
// the closing quote.
func filterLexString(expr string, start int) (filterToken, int, error) {
	quote := expr[start]
	i := start + 1
	for i < len(expr) && expr[i] != quote {
		if quote == '"' && expr[i] == '\\' {
			i++ // skip the escaped byte so \" does not end the string
		}
		i++
	}
	if i >= len(expr) {
		return filterToken{}, 0, filterErrorf(expr, start, "unterminated string literal").because("add the closing %c", quote)
	}
	raw := expr[start : i+1]
	text := raw[1 : len(raw)-1]
	if quote == '"' {
		var err error
		text, err = strconv.Unquote(raw)
		if err != nil {
			return filterToken{}, 0, filterErrorf(expr, start, "invalid string literal %s", raw).
				because(`bad escape sequence; use \" \\ \n \t or a backtick string`)
		}
	}
	return filterToken{kind: filterTokString, text: text, offset: start}, i + 1, nil
}

// filterLexSymbol reads one punctuation token.
func filterLexSymbol(expr string, i int) (filterToken, error) {
	if i+1 < len(expr) {
		switch expr[i : i+2] {
		case "==":
			return filterToken{kind: filterTokEq, text: "==", offset: i}, nil
		case "!=":
			return filterToken{kind: filterTokNe, text: "!=", offset: i}, nil
		}
	}
	kind := filterTokEOF
	switch expr[i] {
	case '(':
		kind = filterTokLParen
	case ')':
		kind = filterTokRParen
	case '[':
		kind = filterTokLBracket
	case ']':
		kind = filterTokRBracket
	case '.':
		kind = filterTokDot
	}
	if kind != filterTokEOF {
		return filterToken{kind: kind, text: expr[i : i+1], offset: i}, nil
	}
	r, _ := utf8.DecodeRuneInString(expr[i:])
	return filterToken{}, filterErrorf(expr, i, "unexpected character %q", r).because("quote values that contain it")
}

// filterSnippet returns the run of non-space bytes at start, for messages.
func filterSnippet(expr string, start int) string {
	end := start
	for end < len(expr) && end-start < 40 && !filterEndsNumber(expr[end]) {
		end++
	}
	return expr[start:end]
}

func filterIsLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func filterIsDigit(c byte) bool { return c >= '0' && c <= '9' }

func filterIsWordByte(c byte) bool {
	return filterIsLetter(c) || filterIsDigit(c) || c == '_' || c == '/'
}

func filterEndsNumber(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ')'
}
