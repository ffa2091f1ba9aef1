package raft

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable without flushing metadata that is not
// needed to read it back (mtime): on Linux the cheaper sync.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
