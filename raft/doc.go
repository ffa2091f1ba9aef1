// Package raft implements the Raft consensus algorithm (Ongaro and
// Ousterhout, "In Search of an Understandable Consensus Algorithm", and
// Ongaro's thesis) from scratch. roster's servers use it to replicate the
// catalog.
//
// This file is a placeholder tour; the package grows with the code.
package raft
