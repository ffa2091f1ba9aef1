package local

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Consul accepts a definition in two spellings: the HTTP API's CamelCase
// ("DeregisterCriticalServiceAfter") and the config files' snake_case
// ("deregister_critical_service_after"). encoding/json already matches
// names case-insensitively, so removing the underscores from the keys of
// the definition objects is all it takes. User data (Meta, Header) keeps
// its keys untouched.

// DecodeServiceDefinition decodes a config-file service definition in
// either spelling and refuses unknown keys, naming them.
func DecodeServiceDefinition(data []byte) (ServiceDefinition, error) {
	var def ServiceDefinition
	err := decode(data, &def, serviceObjects, true)
	return def, err
}

// DecodeCheckDefinition decodes a config-file check definition in either
// spelling and refuses unknown keys, naming them.
func DecodeCheckDefinition(data []byte) (CheckDefinition, error) {
	var def CheckDefinition
	err := decode(data, &def, checkObjects, true)
	return def, err
}

// DecodeServiceRegistration decodes the body of PUT
// /v1/agent/service/register in either spelling (Consul's agent endpoints
// accept both). Fields roster does not implement (Proxy, Connect,
// Namespace, ...) are ignored, as an older Consul ignores newer fields.
func DecodeServiceRegistration(data []byte) (ServiceDefinition, error) {
	var def ServiceDefinition
	err := decode(data, &def, serviceObjects, false)
	return def, err
}

// DecodeCheckRegistration decodes the body of PUT /v1/agent/check/register
// like DecodeServiceRegistration.
func DecodeCheckRegistration(data []byte) (CheckDefinition, error) {
	var def CheckDefinition
	err := decode(data, &def, checkObjects, false)
	return def, err
}

// objectShape says, for the keys of one object, which hold nested
// definition objects (to be rewritten too); other keys' values are left
// alone.
type objectShape map[string]func(json.RawMessage) (json.RawMessage, error)

var serviceObjects, checkObjects objectShape

func init() {
	checkObjects = objectShape{}
	one := func(shape objectShape) func(json.RawMessage) (json.RawMessage, error) {
		return func(raw json.RawMessage) (json.RawMessage, error) { return rewriteKeys(raw, shape) }
	}
	serviceObjects = objectShape{
		"check":   one(checkObjects),
		"checks":  eachOf(checkObjects),
		"weights": one(objectShape{}),
	}
}

func eachOf(shape objectShape) func(json.RawMessage) (json.RawMessage, error) {
	return func(raw json.RawMessage) (json.RawMessage, error) {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, err
		}
		for i, it := range items {
			out, err := rewriteKeys(it, shape)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			items[i] = out
		}
		return json.Marshal(items)
	}
}

// rewriteKeys drops underscores from the keys of a JSON object and
// rewrites the nested definition objects named in shape.
func rewriteKeys(raw json.RawMessage, shape objectShape) (json.RawMessage, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return raw, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(obj))
	for k, v := range obj {
		name := strings.ReplaceAll(k, "_", "")
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("key %q is given twice (in two spellings)", k)
		}
		if sub, ok := shape[strings.ToLower(name)]; ok {
			nv, err := sub(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			v = nv
		}
		out[name] = v
	}
	return json.Marshal(out)
}

func decode(data []byte, v any, shape objectShape, strict bool) error {
	raw, err := rewriteKeys(data, shape)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	err = dec.Decode(v)
	if err != nil && strings.Contains(err.Error(), "unknown field") {
		// Name the key as the user spelled it, not as rewritten.
		name := strings.Trim(err.Error()[strings.Index(err.Error(), "unknown field")+len("unknown field "):], `"`)
		return fmt.Errorf("unknown key %s; see the service and check definition keys in the Consul documentation", originalSpellings(data, name))
	}
	return err
}

// originalSpellings finds how a rewritten key was spelled in the input.
func originalSpellings(data []byte, name string) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	var found []string
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if k, ok := tok.(string); ok && strings.ReplaceAll(k, "_", "") == name && !slices.Contains(found, k) {
			found = append(found, fmt.Sprintf("%q", k))
		}
	}
	if len(found) == 0 {
		return fmt.Sprintf("%q", name)
	}
	return strings.Join(found, " or ")
}

// RegisterServiceJSON is PUT /v1/agent/service/register in one call for
// the HTTP layer (which may not import this package): decode body, then
// AddService. A body that does not decode is a 400 "Request decode
// failed: ...", as in Consul.
func (s *State) RegisterServiceJSON(body []byte, replaceExistingChecks bool) error {
	def, err := DecodeServiceRegistration(body)
	if err != nil {
		return badRequest("Request decode failed: %v", err)
	}
	return s.AddService(def, replaceExistingChecks)
}

// RegisterCheckJSON is PUT /v1/agent/check/register: decode body, then
// AddCheck.
func (s *State) RegisterCheckJSON(body []byte) error {
	def, err := DecodeCheckRegistration(body)
	if err != nil {
		return badRequest("Request decode failed: %v", err)
	}
	return s.AddCheck(def)
}
