package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
)

// Set with -ldflags "-X main.version=... -X main.commit=... -X main.buildDate=..."
// by `make build`.
var (
	version   = "0.1.0-dev"
	commit    = "unknown"
	buildDate = "unknown"
)

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: roster version\n\nPrints the version, the git commit and the build date.")
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	fmt.Fprintf(stdout, "roster v%s\nRevision %s\nBuild date %s\nGo %s %s/%s\n",
		version, commit, buildDate, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
