package httpapi

import (
	"encoding/base64"
	"strconv"

	"roster/catalog"
)

// The KV answers are the API's hottest bodies (a ?consistent GET of one
// key, a PUT's true or false), and encoding/json's reflective encoder was
// a visible share of serving them. They are written here by hand, byte
// for byte what json.Marshal produces (kv_json_test.go checks that), for
// the common case of keys and sessions that need no escaping; any other
// string falls back to json.Marshal.

// A KV write's two answers, encoded once and shared by every request
// (an encodedJSON never changes once built). They carry Consul's
// Content-Type: without one net/http sniffed every answer, and sent
// text/plain.
var (
	kvTrueBody  = &encodedJSON{plain: []byte("true"), contentType: "application/json"}
	kvFalseBody = &encodedJSON{plain: []byte("false"), contentType: "application/json"}
)

// kvBoolBody is a KV write's answer, already encoded.
func kvBoolBody(ok bool) *encodedJSON {
	if ok {
		return kvTrueBody
	}
	return kvFalseBody
}

// appendKVPairsJSON appends pairs as json.Marshal would encode them; false
// when a string needs escaping (the caller then uses json.Marshal).
func appendKVPairsJSON(b []byte, pairs []catalog.KVPair) ([]byte, bool) {
	b = append(b, '[')
	for i := range pairs {
		p := &pairs[i]
		if !plainJSONString(p.Key) || !plainJSONString(p.Session) {
			return nil, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"LockIndex":`...)
		b = strconv.AppendUint(b, p.LockIndex, 10)
		b = append(b, `,"Key":"`...)
		b = append(b, p.Key...)
		b = append(b, `","Flags":`...)
		b = strconv.AppendUint(b, p.Flags, 10)
		b = append(b, `,"Value":`...)
		if p.Value == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, p.Value)
			b = append(b, '"')
		}
		if p.Session != "" {
			b = append(b, `,"Session":"`...)
			b = append(b, p.Session...)
			b = append(b, '"')
		}
		b = append(b, `,"CreateIndex":`...)
		b = strconv.AppendUint(b, p.CreateIndex, 10)
		b = append(b, `,"ModifyIndex":`...)
		b = strconv.AppendUint(b, p.ModifyIndex, 10)
		b = append(b, '}')
	}
	return append(b, ']'), true
}

// plainJSONString reports whether json.Marshal writes s unchanged between
// quotes: printable ASCII without the characters it escapes (", \ and,
// as HTML-safe JSON, <, > and &).
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
