package agent

import (
	"fmt"
	"strings"
	"testing"
)

// Node meta is checked as Consul checks node_meta: the pair count, key
// characters and length, value length and the reserved "consul-" prefix,
// each refused with a message naming the pair and the limit.
func TestNodeMeta_ValidateRefusesWhatConsulRefuses(t *testing.T) {
	many := map[string]string{}
	for i := range nodeMetaMaxPairs + 1 {
		many[fmt.Sprint("k", i)] = "v"
	}
	cases := []struct {
		meta map[string]string
		want string
	}{
		{map[string]string{"": "x"}, "Key cannot be blank"},
		{map[string]string{"rack id": "x"}, "('rack id', 'x'): Key contains invalid characters"},
		{map[string]string{"a.b": "x"}, "Key contains invalid characters"},
		{map[string]string{strings.Repeat("k", 129): "x"}, "Key is too long (limit: 128 characters)"},
		{map[string]string{"consul-version": "1"}, "Key prefix 'consul-' is reserved for internal use"},
		{map[string]string{"rack": strings.Repeat("v", 513)}, "Value is too long (limit: 512 characters)"},
		{many, "cannot contain more than 64 key/value pairs"},
	}
	for _, tc := range cases {
		err := ValidateNodeMeta(tc.meta)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "node_meta invalid: ") {
			t.Errorf("ValidateNodeMeta(%.60v) = %v, want %q", tc.meta, err, tc.want)
		}
	}
	ok := map[string]string{"rack": "r1", "env_2": "", "Zone-A": strings.Repeat("v", 512), strings.Repeat("k", 128): "x"}
	if err := ValidateNodeMeta(ok); err != nil {
		t.Fatalf("valid meta refused: %v", err)
	}
	cfg := testConfig(t)
	cfg.Meta = map[string]string{"consul-x": "1"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "node_meta invalid") {
		t.Fatalf("Config.Validate with reserved meta = %v, want node_meta invalid", err)
	}
}
