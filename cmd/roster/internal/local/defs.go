package local

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"roster/catalog"
)

// This file holds what applications send to register: Consul's
// AgentServiceRegistration and AgentCheckRegistration bodies (Consul API
// notes §4.4, §4.5). Field names are Consul's JSON names, so the HTTP layer
// decodes request bodies straight into these types.

// Check types as reported in HealthCheck.Type (§4.6).
const (
	TypeTTL         = "ttl"
	TypeHTTP        = "http"
	TypeTCP         = "tcp"
	TypeScript      = "script"
	TypeMaintenance = "maintenance"
)

// Limits Consul applies to check definitions (§4.5).
const (
	// MinCheckInterval is the smallest interval a check may run at; lower
	// values are raised to it.
	MinCheckInterval = time.Second
	// DefaultCheckTimeout bounds one HTTP, TCP or script probe.
	DefaultCheckTimeout = 10 * time.Second
	// MinDeregisterCriticalAfter is the smallest DeregisterCriticalServiceAfter.
	MinDeregisterCriticalAfter = time.Minute
	// MaxCheckOutputBytes is check_output_max_size: outputs are cut to it.
	MaxCheckOutputBytes = 4096
)

// Duration is a time.Duration that decodes from Consul's two encodings: a
// Go duration string ("10s") or an integer number of nanoseconds. It
// encodes as a string, the form Consul's agent endpoints return.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string; zero is "".
func (d Duration) MarshalJSON() ([]byte, error) {
	if d == 0 {
		return []byte(`""`), nil
	}
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "10s", "" (zero) or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*d = 0
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		if str == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(str)
		if err != nil {
			return fmt.Errorf("invalid duration %q: use a Go duration such as \"10s\" or \"1m30s\"", str)
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("invalid duration %s: use a string such as \"10s\" or integer nanoseconds", s)
	}
	*d = Duration(n)
	return nil
}

// String is the Go duration string, "" for zero (Consul's HealthCheck
// Interval/Timeout fields).
func (d Duration) String() string {
	if d == 0 {
		return ""
	}
	return time.Duration(d).String()
}

// CheckDefinition is one check as registered: the body of PUT
// /v1/agent/check/register (AgentCheckRegistration) or an element of a
// service's Check/Checks (AgentServiceCheck). Exactly one kind is set:
// TTL, HTTP, TCP or ScriptArgs.
type CheckDefinition struct {
	// ID names the check in /v1/agent/check/register; CheckID is the same
	// field inside a service registration. Either is accepted.
	ID      string `json:",omitempty"`
	CheckID string `json:",omitempty"`
	Name    string `json:",omitempty"`
	// ServiceID binds a standalone check to a local service.
	ServiceID string `json:",omitempty"`
	Notes     string `json:",omitempty"`
	// Status is the initial status; default critical.
	Status string `json:",omitempty"`

	TTL Duration `json:",omitempty"`

	HTTP             string              `json:",omitempty"`
	Method           string              `json:",omitempty"`
	Header           map[string][]string `json:",omitempty"`
	Body             string              `json:",omitempty"`
	TLSServerName    string              `json:",omitempty"`
	TLSSkipVerify    bool                `json:",omitempty"`
	DisableRedirects bool                `json:",omitempty"`

	TCP string `json:",omitempty"`

	// ScriptArgs is the command and its arguments (JSON "ScriptArgs";
	// "Args" is accepted too, as in Consul's config files).
	ScriptArgs []string `json:",omitempty"`
	Args       []string `json:",omitempty"`

	Interval                       Duration `json:",omitempty"`
	Timeout                        Duration `json:",omitempty"`
	DeregisterCriticalServiceAfter Duration `json:",omitempty"`

	SuccessBeforePassing   int `json:",omitempty"`
	FailuresBeforeWarning  int `json:",omitempty"`
	FailuresBeforeCritical int `json:",omitempty"`
}

// ServiceDefinition is the body of PUT /v1/agent/service/register
// (AgentServiceRegistration, §4.4) and a "services" entry of a config file.
type ServiceDefinition struct {
	Kind              string                            `json:",omitempty"`
	ID                string                            `json:",omitempty"`
	Name              string                            `json:",omitempty"`
	Tags              []string                          `json:",omitempty"`
	Port              int                               `json:",omitempty"`
	Address           string                            `json:",omitempty"`
	TaggedAddresses   map[string]catalog.ServiceAddress `json:",omitempty"`
	Meta              map[string]string                 `json:",omitempty"`
	EnableTagOverride bool                              `json:",omitempty"`
	Weights           *catalog.Weights                  `json:",omitempty"`
	Check             *CheckDefinition                  `json:",omitempty"`
	Checks            []*CheckDefinition                `json:",omitempty"`
}

// Kind reports which check this is: TypeTTL, TypeHTTP, TypeTCP,
// TypeScript, or "" when no kind is set.
func (c *CheckDefinition) Kind() string {
	switch {
	case c.HTTP != "":
		return TypeHTTP
	case c.TCP != "":
		return TypeTCP
	case len(c.args()) > 0:
		return TypeScript
	case c.TTL != 0:
		return TypeTTL
	}
	return ""
}

func (c *CheckDefinition) args() []string {
	if len(c.ScriptArgs) > 0 {
		return c.ScriptArgs
	}
	return c.Args
}

// Validate applies Consul's CheckType.Validate rules. The messages are
// Consul's; the HTTP layer prefixes "Invalid check: ".
func (c *CheckDefinition) Validate() error {
	intervalCheck := c.HTTP != "" || c.TCP != "" || len(c.args()) > 0
	if c.Interval > 0 && c.TTL > 0 {
		return fmt.Errorf("Interval and TTL cannot both be specified")
	}
	if intervalCheck && c.Interval <= 0 {
		return fmt.Errorf("Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or GRPC checks")
	}
	if !intervalCheck && c.TTL <= 0 {
		return fmt.Errorf("TTL must be > 0 for TTL checks")
	}
	if c.Timeout < 0 || c.DeregisterCriticalServiceAfter < 0 {
		return fmt.Errorf("Timeout and DeregisterCriticalServiceAfter must not be negative")
	}
	if c.SuccessBeforePassing < 0 || c.FailuresBeforeWarning < 0 || c.FailuresBeforeCritical < 0 {
		return fmt.Errorf("SuccessBeforePassing, FailuresBeforeWarning and FailuresBeforeCritical must not be negative")
	}
	switch c.Status {
	case "", catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical:
	default:
		return fmt.Errorf("Status for checks must 'passing', 'warning', 'critical'")
	}
	return nil
}

// normalized returns a copy with Consul's defaults filled in: ID from
// CheckID/Name, ScriptArgs from Args, the interval raised to the minimum,
// the timeout defaulted, DeregisterCriticalServiceAfter raised to 1m.
func (c CheckDefinition) normalized() CheckDefinition {
	if c.ID == "" {
		c.ID = c.CheckID
	}
	c.CheckID = ""
	if c.ID == "" {
		c.ID = c.Name
	}
	if len(c.ScriptArgs) == 0 {
		c.ScriptArgs = c.Args
	}
	c.Args = nil
	if c.Kind() != TypeTTL && c.Interval > 0 && time.Duration(c.Interval) < MinCheckInterval {
		c.Interval = Duration(MinCheckInterval)
	}
	if c.Kind() != TypeTTL && c.Timeout == 0 {
		c.Timeout = Duration(DefaultCheckTimeout)
	}
	if c.DeregisterCriticalServiceAfter > 0 && time.Duration(c.DeregisterCriticalServiceAfter) < MinDeregisterCriticalAfter {
		c.DeregisterCriticalServiceAfter = Duration(MinDeregisterCriticalAfter)
	}
	if c.HTTP != "" && c.Method == "" {
		c.Method = "GET"
	}
	if c.Status == "" {
		c.Status = catalog.HealthCritical
	}
	return c
}

// clone returns a deep copy.
func (c CheckDefinition) clone() CheckDefinition {
	if c.Header != nil {
		h := make(map[string][]string, len(c.Header))
		for k, v := range c.Header {
			h[k] = append([]string(nil), v...)
		}
		c.Header = h
	}
	c.ScriptArgs = append([]string(nil), c.ScriptArgs...)
	if len(c.ScriptArgs) == 0 {
		c.ScriptArgs = nil
	}
	c.Args = append([]string(nil), c.Args...)
	if len(c.Args) == 0 {
		c.Args = nil
	}
	return c
}

// catalogDefinition is the Definition block the catalog stores for a check.
func (c *CheckDefinition) catalogDefinition() catalog.HealthCheckDefinition {
	d := catalog.HealthCheckDefinition{
		HTTP:                           c.HTTP,
		Method:                         c.Method,
		Body:                           c.Body,
		TLSServerName:                  c.TLSServerName,
		TLSSkipVerify:                  c.TLSSkipVerify,
		TCP:                            c.TCP,
		Interval:                       c.Interval.String(),
		Timeout:                        c.Timeout.String(),
		DeregisterCriticalServiceAfter: c.DeregisterCriticalServiceAfter.String(),
	}
	if c.Header != nil {
		d.Header = CheckDefinition{Header: c.Header}.clone().Header
	}
	return d
}

// truncateOutput cuts output to MaxCheckOutputBytes, as Consul does,
// marking the cut.
func truncateOutput(s string) string {
	if len(s) <= MaxCheckOutputBytes {
		return s
	}
	return s[:MaxCheckOutputBytes] + "\n... (truncated)"
}

// TruncateOutput is truncateOutput for the check runners.
func TruncateOutput(s string) string { return truncateOutput(s) }

// Consul's limits on service and node metadata.
const (
	metaMaxPairs      = 64
	metaKeyMaxChars   = 128
	metaValueMaxChars = 512
)

// validateMeta applies Consul's metadata rules (structs.ValidateMetadata).
func validateMeta(meta map[string]string) error {
	if len(meta) > metaMaxPairs {
		return fmt.Errorf("Node metadata cannot contain more than %d key/value pairs", metaMaxPairs)
	}
	for k, v := range meta {
		switch {
		case k == "":
			return fmt.Errorf("Key cannot be blank")
		case len(k) > metaKeyMaxChars:
			return fmt.Errorf("Key is too long (limit: %d characters)", metaKeyMaxChars)
		case strings.HasPrefix(k, "consul-"):
			return fmt.Errorf("Key prefix 'consul-' is reserved for internal use")
		case len(v) > metaValueMaxChars:
			return fmt.Errorf("Value is too long (limit: %d characters)", metaValueMaxChars)
		}
	}
	return nil
}
