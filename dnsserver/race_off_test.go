//go:build !race

package dnsserver

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = false
