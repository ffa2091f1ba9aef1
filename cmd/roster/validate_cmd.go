package main

import (
	"fmt"
	"io"
	"os"

	"roster/cmd/roster/internal/agent"
	"roster/cmd/roster/internal/local"
)

// runValidate is Consul's `validate <file|dir>...`: the config files are
// parsed and checked as `roster agent -config-file/-config-dir` would, and
// the first error names the file and the key.
func runValidate(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" {
		fmt.Fprintln(stderr, "Usage: roster validate <file.json|dir>...\n\nChecks agent config files (directories: their *.json files).")
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var files, dirs []string
	for _, p := range args {
		st, err := os.Stat(p)
		if err != nil {
			return fail(stderr, "reading %s: %v", p, err)
		}
		if st.IsDir() {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
	}
	cfg := agent.DefaultConfig()
	if err := loadConfigFiles(&cfg, files, dirs); err != nil {
		return fail(stderr, "%v", err)
	}
	if cfg.NodeName == "" {
		cfg.NodeName = "validate" // the host name would be used at run time
	}
	if !cfg.Dev && cfg.DataDir == "" {
		cfg.DataDir = "." // only required at run time, often given as a flag
	}
	if _, err := agent.New(cfg); err != nil {
		return fail(stderr, "%v", err)
	}
	// The definitions' own rules (one check kind, intervals, known
	// service IDs) are checked by loading them into a throwaway state.
	st, err := local.New(local.Config{NodeName: cfg.NodeName, Address: "127.0.0.1"})
	if err == nil {
		err = st.LoadConfig(cfg.Local.Services, cfg.Local.Checks)
	}
	if err != nil {
		return fail(stderr, "in the services and checks of the config files: %v", err)
	}
	fmt.Fprintln(stdout, "Configuration is valid!")
	return 0
}
