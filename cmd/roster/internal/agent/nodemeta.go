package agent

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Node meta limits, as Consul's agent enforces them on node_meta and
// -node-meta (structs.ValidateNodeMetadata): at most 64 pairs, keys of
// letters, digits, '_' and '-' up to 128 characters, values up to 512, and
// no key under the "consul-" prefix, which the agent reserves for its own
// keys (consul-network-segment).
const (
	nodeMetaMaxPairs     = 64
	nodeMetaMaxKeyLen    = 128
	nodeMetaMaxValueLen  = 512
	nodeMetaReservedPref = "consul-"
)

var nodeMetaKeyRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// ValidateNodeMeta reports the first bad pair of meta (in key order, so
// the message is stable) with Consul's wording, prefixed by the setting
// that holds it.
func ValidateNodeMeta(meta map[string]string) error {
	if len(meta) > nodeMetaMaxPairs {
		return fmt.Errorf("node_meta invalid: Node metadata cannot contain more than %d key/value pairs (got %d)", nodeMetaMaxPairs, len(meta))
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := nodeMetaPairError(k, meta[k]); err != "" {
			return fmt.Errorf("node_meta invalid: Couldn't load metadata pair ('%s', '%s'): %s", k, meta[k], err)
		}
	}
	return nil
}

func nodeMetaPairError(key, value string) string {
	switch {
	case key == "":
		return "Key cannot be blank"
	case !nodeMetaKeyRE.MatchString(key):
		return "Key contains invalid characters (use letters, digits, '_' and '-')"
	case len(key) > nodeMetaMaxKeyLen:
		return fmt.Sprintf("Key is too long (limit: %d characters)", nodeMetaMaxKeyLen)
	case strings.HasPrefix(key, nodeMetaReservedPref):
		return fmt.Sprintf("Key prefix '%s' is reserved for internal use", nodeMetaReservedPref)
	case len(value) > nodeMetaMaxValueLen:
		return fmt.Sprintf("Value is too long (limit: %d characters)", nodeMetaMaxValueLen)
	}
	return ""
}
