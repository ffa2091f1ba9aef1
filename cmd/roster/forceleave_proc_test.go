package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"roster/internal/testkit"
)

// catalogHasNode reports whether base's catalog lists node.
func catalogHasNode(base, node string) (bool, error) {
	var nodes []struct{ Node string }
	if err := getJSON(base, "/v1/catalog/nodes", &nodes); err != nil {
		return false, err
	}
	for _, n := range nodes {
		if n.Node == node {
			return true, nil
		}
	}
	return false, nil
}

// memberStatusIs checks base's own gossip view (/v1/agent/members, never
// forwarded) for node with serf status want (1 alive ... 4 failed).
func memberStatusIs(node string, want int) func(string) error {
	return func(base string) error {
		var ms []member
		if err := getJSON(base, "/v1/agent/members", &ms); err != nil {
			return err
		}
		for _, m := range ms {
			if m.Name == node {
				if m.Status != want {
					return fmt.Errorf("%s is %s here, want %s", node, memberStatus[m.Status], memberStatus[want])
				}
				return nil
			}
		}
		return fmt.Errorf("%s not in this agent's members %+v", node, ms)
	}
}

// force-leave turns a crashed client and a crashed server from failed
// into left: the leader deregisters both nodes and removes the server
// from the Raft configuration. An alive member refutes and stays; an
// unknown one is refused.
func TestProcess_ForceLeaveRemovesFailedClientAndServer(t *testing.T) {
	servers := startServerProcs(t, 3)
	waitLeaderAll(t, servers)
	client := newClientProc(t, "proc-c1", servers[0])
	onEveryServer(t, servers, "proc-c1 alive", serfHealth("proc-c1", "passing"))
	var leader string
	testkit.WaitFor(t, 15*time.Second, "the leader's address", func() (err error) {
		leader, err = statusLeader(servers[0].base())
		if err == nil && leader == "" {
			err = fmt.Errorf("no leader")
		}
		return err
	})
	var victim *serverProc
	var rest []*serverProc
	for _, p := range servers {
		if victim == nil && leader != fmt.Sprintf("127.0.0.1:%d", p.ports[2]) {
			victim = p
			continue
		}
		rest = append(rest, p)
	}
	env := []string{"CONSUL_HTTP_ADDR=" + rest[0].base()}
	// The catalog check above is answered by the leader; force-leave acts
	// on rest[0]'s own gossip view, which may not have heard of the
	// client yet (it joined through servers[0]).
	onEveryServer(t, rest[:1], "proc-c1 alive in the local view", memberStatusIs("proc-c1", 1))
	// An alive member is accepted, as Consul accepts it: it is leaving
	// for a moment, refutes and stays alive and registered.
	if code, out, stderr := runRosterEnv(t, env, "force-leave", "proc-c1"); code != 0 || out != "" {
		t.Fatalf("force-leave of an alive member: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	onEveryServer(t, servers, "proc-c1 alive again", func(base string) error {
		if err := memberStatusIs("proc-c1", 1)(base); err != nil {
			return err
		}
		return serfHealth("proc-c1", "passing")(base)
	})
	if code, _, stderr := runRosterEnv(t, env, "force-leave", "nosuchnode"); code != 1 || !strings.Contains(stderr, "nosuchnode") {
		t.Fatalf("force-leave of an unknown member: exit %d, stderr %q", code, stderr)
	}
	for _, p := range []*serverProc{client, victim} {
		p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
	}
	for _, p := range []*serverProc{client, victim} {
		onEveryServer(t, rest, p.name+" critical", serfHealth(p.name, "critical"))
		// force-leave acts on the gossip view of the agent it is sent
		// to: a member that agent holds as failed is left at once; one
		// it still holds as alive or suspect is leaving, and left only
		// once it is found dead. The catalog read above is answered by
		// the leader, so it says nothing about rest[0]'s own view, which
		// can lag the leader's by a suspicion timeout on a loaded host:
		// wait for rest[0] itself to hold the member failed, so that
		// this covers the at-once path.
		onEveryServer(t, rest[:1], p.name+" failed in the local view", memberStatusIs(p.name, 4))
		if code, out, stderr := runRosterEnv(t, env, "force-leave", p.name); code != 0 || out != "" {
			t.Fatalf("force-leave %s: exit %d, stdout %q, stderr %q", p.name, code, out, stderr)
		}
	}
	onEveryServer(t, rest, "both nodes deregistered", func(base string) error {
		for _, p := range []*serverProc{client, victim} {
			if has, err := catalogHasNode(base, p.name); err != nil || has {
				return fmt.Errorf("catalog still lists %s (%v)", p.name, err)
			}
		}
		return nil
	})
	onEveryServer(t, rest, "the server out of raft", func(base string) error {
		var conf struct{ Servers []raftServer }
		if err := getJSON(base, "/v1/operator/raft/configuration", &conf); err != nil {
			return err
		}
		if len(conf.Servers) != 2 {
			return fmt.Errorf("raft configuration %+v", conf.Servers)
		}
		return nil
	})
	code, out, _ := runRosterEnv(t, env, "members")
	if code != 0 || strings.Count(out, " left ") != 2 || strings.Count(out, " alive ") != 2 {
		t.Fatalf("members after force-leave: exit %d\n%s", code, out)
	}
	code, out, _ = runRosterEnv(t, env, "members", "-status", "left")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "proc-c1") || strings.Contains(out, " alive ") {
		t.Fatalf("members -status left: exit %d\n%s", code, out)
	}
	if code, out, _ = runRosterEnv(t, env, "members", "-status", "^failed$"); code != 2 || out != "" {
		t.Fatalf("members -status ^failed$ with none failed: exit %d, %q", code, out)
	}
}
