//go:build !(linux && (amd64 || arm64))

package dnsserver

import "context"

// runBatched is Linux's (batch_linux.go): elsewhere the reader reads one
// packet per system call.
func (r *udpReader) runBatched(context.Context, *udpLoop, udpSocket) bool { return false }
