// Package faults is the one fault vocabulary shared by roster's in-memory
// networks (raft's and swim's). A Plan answers a single question for every
// message a simulated network carries — "is this message from A to B
// delivered, how late, and how many times?" — and is steered by the verbs
// DESIGN.md names:
//
//	Partition(groups...)   only members of the same group can talk
//	Isolate(id)            id can talk to nobody
//	Heal()                 forget partitions, isolation, drops and delays
//	Drop(from, to, p)      lose messages on one directed link with probability p
//	Delay(from, to, d)     add latency d on one directed link
//	Duplicate(p), Reorder(p)  network-wide duplication and reordering
//	Seed(n)                make every random decision reproducible
//
// "*" as from or to means every node. Chaos tests name their scenario in
// these verbs, so a raft test and a swim test of the same partition read
// the same. The networks themselves (raft.MemNetwork, swim.MemNetwork) stay
// in their packages: they know how to carry their own messages; Plan only
// decides their fate.
package faults
