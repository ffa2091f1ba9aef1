package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"roster/internal/testkit"
)

// nodeServiceIDs lists the service IDs the catalog holds for node, as one
// server answers.
func nodeServiceIDs(c agentHTTP, node string) ([]string, error) {
	code, out := c.do("GET", "/v1/catalog/node-services/"+node, nil)
	if code != 200 {
		return nil, fmt.Errorf("node-services = %d %s", code, out)
	}
	var ns struct{ Services []struct{ ID string } }
	if err := json.Unmarshal(out, &ns); err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range ns.Services {
		ids = append(ids, s.ID)
	}
	sort.Strings(ids)
	return ids, nil
}

// A client cut off from the servers keeps taking registrations; after the
// heal anti-entropy makes the catalog equal to what the client has: the
// service removed during the partition is gone, the one added is there.
func TestPartition_ClientChangesDuringIsolationReachCatalogAfterHeal(t *testing.T) {
	tc := newTestCluster(t, 1)
	ccfg := tc.clientConfig("c1")
	ccfg.Local.SyncRetryInterval = 200 * time.Millisecond
	tc.cfgs = append(tc.cfgs, ccfg)
	plan := tc.withFaults()
	tc.startAll()
	server := agentHTTP{t: t, base: "http://" + tc.agents[0].HTTPAddrs()[0]}
	client := agentHTTP{t: t, base: "http://" + tc.agents[1].HTTPAddrs()[0]}
	wantServices := func(want ...string) func() error {
		return func() error {
			ids, err := nodeServiceIDs(server, "c1")
			if err != nil {
				return err
			}
			if !slices.Equal(ids, want) {
				return fmt.Errorf("c1's services in the catalog = %v, want %v", ids, want)
			}
			return nil
		}
	}
	client.mustPut("/v1/agent/service/register", map[string]any{"Name": "before"})
	testkit.WaitFor(t, 20*time.Second, "c1's first service in the catalog", wantServices("before"))

	plan.Isolate("c1")
	// Open connections notice the cut within a poll (NetFaults): wait
	// until the client's own sync fails, so nothing below can cross.
	testkit.WaitFor(t, 10*time.Second, "c1's sync to fail across the cut", func() error {
		ctx, cancel := contextWithTimeout(2 * time.Second)
		defer cancel()
		if err := tc.agents[1].SyncNow(ctx); err == nil {
			return errors.New("c1 still syncs")
		}
		return nil
	})
	client.mustPut("/v1/agent/service/deregister/before", nil)
	client.mustPut("/v1/agent/service/register", map[string]any{"Name": "during"})
	// The server still has the old view while the client is cut off.
	if err := wantServices("before")(); err != nil {
		t.Fatalf("the catalog changed across the partition: %v", err)
	}

	plan.Heal()
	testkit.WaitFor(t, 30*time.Second, "the catalog to match c1 after the heal", wantServices("during"))
}
