package client

import (
	"strings"
	"testing"
	"time"
)

func TestConfig_ValidateNamesTheBadField(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Wait: -time.Second}, "Wait"},
		{Config{MinBackoff: -1}, "MinBackoff"},
		{Config{MinBackoff: time.Minute, MaxBackoff: time.Second}, "exceeds MaxBackoff"},
		{Config{Address: "http://"}, "Address"},
	}
	for _, c := range cases {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("the zero Config must be valid: %v", err)
	}
}

func TestBaseURL_AcceptsHostPortAndURLs(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "http://127.0.0.1:8500",
		"10.0.0.1:8500":          "http://10.0.0.1:8500",
		"https://consul.example": "https://consul.example",
	} {
		u, err := baseURL(in)
		if err != nil || u.String() != want {
			t.Errorf("baseURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
}

func TestBackoff_GrowsJitteredAndCapped(t *testing.T) {
	w, err := New(Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	for failures := 1; failures <= 40; failures++ {
		full := min(time.Second, 100*time.Millisecond<<min(failures-1, 20))
		d := w.backoff(failures)
		if d < full/2 || d > full {
			t.Fatalf("backoff(%d) = %v, want within [%v, %v]", failures, d, full/2, full)
		}
	}
}
