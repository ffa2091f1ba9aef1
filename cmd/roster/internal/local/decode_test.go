package local

import (
	"strings"
	"testing"
	"time"
)

func TestDecodeServiceDefinition_BothSpellings(t *testing.T) {
	snake := `{"name":"web","id":"web-1","port":80,"enable_tag_override":true,
		"meta":{"build_id":"7"},"weights":{"passing":3,"warning":1},
		"check":{"check_id":"c1","http":"http://127.0.0.1/","interval":"5s","tls_skip_verify":true,
			"deregister_critical_service_after":"90m","success_before_passing":2,"header":{"X_Token":["a"]}},
		"checks":[{"args":["/bin/true"],"interval":"10s"},{"ttl":"30s","service_id":"web-1"}]}`
	def, err := DecodeServiceDefinition([]byte(snake))
	if err != nil {
		t.Fatal(err)
	}
	c := def.Check
	if def.ID != "web-1" || !def.EnableTagOverride || def.Meta["build_id"] != "7" || def.Weights.Passing != 3 ||
		c.CheckID != "c1" || !c.TLSSkipVerify || time.Duration(c.DeregisterCriticalServiceAfter) != 90*time.Minute ||
		c.SuccessBeforePassing != 2 || c.Header["X_Token"][0] != "a" || len(def.Checks) != 2 ||
		def.Checks[0].Kind() != TypeScript || def.Checks[1].ServiceID != "web-1" {
		t.Fatalf("decoded %+v check %+v", def, c)
	}
	camel := `{"Name":"web","Check":{"CheckID":"c1","TTL":"10s","DeregisterCriticalServiceAfter":"1m"}}`
	if def, err = DecodeServiceDefinition([]byte(camel)); err != nil || def.Check.TTL != Duration(10*time.Second) {
		t.Fatalf("%+v %v", def, err)
	}
}

func TestDecodeServiceDefinition_UnknownKeyNamed(t *testing.T) {
	_, err := DecodeServiceDefinition([]byte(`{"name":"web","check":{"ttl":"1s","bogus_key":1}}`))
	if err == nil || !strings.Contains(err.Error(), `"bogus_key"`) {
		t.Fatalf("err = %v", err)
	}
	def, err := DecodeServiceRegistration([]byte(`{"Name":"web","Proxy":{"x":1},"Check":null,"Checks":null,"Check_ID":"z"}`))
	if err != nil || def.Name != "web" {
		t.Fatalf("HTTP registration with unknown fields: %+v %v", def, err)
	}
	if _, err := DecodeCheckRegistration([]byte(`{"Name":"c","TTL":"10s","Namespace":"default"}`)); err != nil {
		t.Fatalf("HTTP check registration: %v", err)
	}
	if _, err := DecodeCheckDefinition([]byte(`{"name":"c","ttl":"soon"}`)); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("bad duration err = %v", err)
	}
}

// FuzzDecodeServiceDefinition: any input decodes or errors, never panics,
// and whatever decodes can be registered or is refused with a 400.
func FuzzDecodeServiceDefinition(f *testing.F) {
	f.Add([]byte(`{"name":"web","check":{"ttl":"1s"}}`))
	f.Add([]byte(`{"Name":"web","Checks":[{"HTTP":"http://x","Interval":"1s"},null]}`))
	f.Add([]byte(`{"name":"a","weights":{"passing":0}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		def, err := DecodeServiceDefinition(data)
		if err != nil {
			return
		}
		s, err := New(Config{NodeName: "n", Address: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddService(def, false); err != nil && StatusCode(err) != 400 {
			t.Fatalf("registration failed with %d: %v", StatusCode(err), err)
		}
	})
}

func TestRegisterJSON_GoClientBodies(t *testing.T) {
	s := newState(t, "", newClock())
	// What github.com/hashicorp/consul/api sends for a service with a check.
	body := `{"ID":"web1","Name":"web","Tags":["v1"],"Port":8080,"Check":{"CheckID":"","TTL":"15s","Status":"passing","DeregisterCriticalServiceAfter":"90m"},"Checks":null}`
	must(t, s.RegisterServiceJSON([]byte(body), false))
	if c, ok := s.Check("service:web1"); !ok || c.Status != "passing" {
		t.Fatalf("check %+v", c)
	}
	must(t, s.RegisterCheckJSON([]byte(`{"ID":"mem","Name":"Memory","Notes":"n","TTL":"30s"}`)))
	wantCode(t, s.RegisterServiceJSON([]byte(`{"Name":`), false), 400, "Request decode failed")
	wantCode(t, s.RegisterCheckJSON([]byte(`{"Name":"x","TTL":"0s"}`)), 400, "Invalid check: TTL must be > 0")
}
