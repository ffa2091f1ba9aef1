package compat

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/consul/api"
)

// TestSnapshot_SaveAndRestoreWithTheClient: the client's Snapshot().Save
// streams an archive with its index, and Restore puts the saved state back.
func TestSnapshot_SaveAndRestoreWithTheClient(t *testing.T) {
	c := devAgent(t, "compat-snapshot")
	kv := c.KV()
	if _, err := kv.Put(&api.KVPair{Key: "snap/k", Value: []byte("saved")}, nil); err != nil {
		t.Fatal(err)
	}
	rc, qm, err := c.Snapshot().Save(nil)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(archive) == 0 || qm.LastIndex == 0 {
		t.Fatalf("Save: %d bytes, index %d, %v", len(archive), qm.LastIndex, err)
	}
	if _, err := kv.Put(&api.KVPair{Key: "snap/k", Value: []byte("changed")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Snapshot().Restore(nil, bytes.NewReader(archive)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	p, _, err := kv.Get("snap/k", nil)
	if err != nil || p == nil || string(p.Value) != "saved" {
		t.Fatalf("after Restore snap/k = %+v, %v", p, err)
	}
	if err := c.Snapshot().Restore(nil, bytes.NewReader([]byte("not a snapshot"))); err == nil {
		t.Fatal("Restore of garbage succeeded")
	}
	if err := c.Agent().ForceLeave("no-such-node"); err == nil {
		t.Fatal("ForceLeave of an unknown node succeeded")
	}
}
