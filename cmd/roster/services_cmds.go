package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"roster/cmd/roster/internal/local"
)

// The commands over the agent's own services and checks, as Consul's:
// `services register|deregister`, `maint` and `reload`. They talk to the
// local agent's /v1/agent/* endpoints; anti-entropy takes the change to
// the catalog.

// localCommands are merged into the command table by main.go (validate
// lives in validate_cmd.go).
var localCommands = map[string]command{
	"services": {"Registers or deregisters services with the local agent", runServices},
	"maint":    {"Puts the node or a service into maintenance mode", runMaint},
	"reload":   {"Makes the agent re-read its config files' services and checks", runReload},
	"validate": {"Checks agent config files for errors", runValidate},
}

func runServices(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "register" && args[0] != "deregister") {
		fmt.Fprintln(stderr, "Usage: roster services register|deregister [options] [file.json...]")
		return 2
	}
	if args[0] == "register" {
		return runServicesRegister(args[1:], stdout, stderr)
	}
	return runServicesDeregister(args[1:], stdout, stderr)
}

// tagList is a repeatable -tag flag.
type tagList []string

func (t *tagList) String() string     { return strings.Join(*t, ",") }
func (t *tagList) Set(v string) error { *t = append(*t, v); return nil }

// runServicesRegister registers the service the flags describe, or every
// service of the given config files (`service`/`services` keys).
func runServicesRegister(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("services register", "Registers a service with the local agent.", stderr)
	name := fs.String("name", "", "Service name (required unless files are given).")
	id := fs.String("id", "", "Service ID (default: the name).")
	addr := fs.String("address", "", "Service address (default: the node's).")
	port := fs.Int("port", 0, "Service port.")
	var tags tagList
	fs.Var(&tags, "tag", "Service tag (repeatable).")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	defs, err := servicesToRegister(fs, *name, *id, *addr, *port, tags)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	c := client()
	for _, def := range defs {
		if err := c.sendJSON("PUT", "/v1/agent/service/register", nil, def); err != nil {
			return fail(stderr, "registering service %q: %v", def.Name, err)
		}
		fmt.Fprintf(stdout, "Registered service: %s\n", def.Name)
	}
	return 0
}

func servicesToRegister(fs *flag.FlagSet, name, id, addr string, port int, tags []string) ([]local.ServiceDefinition, error) {
	if fs.NArg() == 0 {
		if name == "" {
			return nil, fmt.Errorf("-name is required (or give config files with service definitions)")
		}
		return []local.ServiceDefinition{{ID: id, Name: name, Address: addr, Port: port, Tags: tags}}, nil
	}
	var defs []local.ServiceDefinition
	for _, path := range fs.Args() {
		fc, err := parseConfigFile(path)
		if err != nil {
			return nil, err
		}
		if len(fc.services) == 0 {
			return nil, fmt.Errorf("config file %s defines no service (keys service, services)", path)
		}
		defs = append(defs, fc.services...)
	}
	return defs, nil
}

// runServicesDeregister removes the service -id names, or the services of
// the given config files (by ID, defaulting to the name).
func runServicesDeregister(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("services deregister", "Deregisters a service from the local agent.", stderr)
	id := fs.String("id", "", "ID of the service to deregister (or give config files).")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	var ids []string
	if *id != "" {
		ids = append(ids, *id)
	}
	for _, path := range fs.Args() {
		fc, err := parseConfigFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 2
		}
		for _, def := range fc.services {
			ids = append(ids, cmp(def.ID, def.Name))
		}
	}
	if len(ids) == 0 {
		fmt.Fprintln(stderr, "Error: -id or a config file with service definitions is required")
		return 2
	}
	c := client()
	for _, sid := range ids {
		if err := c.do("PUT", "/v1/agent/service/deregister/"+url.PathEscape(sid), nil, nil); err != nil {
			return fail(stderr, "deregistering service %q: %v", sid, err)
		}
		fmt.Fprintf(stdout, "Deregistered service: %s\n", sid)
	}
	return 0
}

// cmp returns the first non-empty string.
func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// runMaint is Consul's `maint`: -enable/-disable for the node, or for one
// service with -service; without either it lists what is in maintenance.
func runMaint(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("maint", "Controls node or service maintenance mode.", stderr)
	enable := fs.Bool("enable", false, "Enable maintenance mode.")
	disable := fs.Bool("disable", false, "Disable maintenance mode.")
	reason := fs.String("reason", "", "Text shown as the maintenance check's notes.")
	service := fs.String("service", "", "Service ID to control instead of the whole node.")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if *enable && *disable {
		fmt.Fprintln(stderr, "Error: -enable and -disable are mutually exclusive")
		return 2
	}
	c := client()
	if !*enable && !*disable {
		return listMaintenance(c, stdout, stderr)
	}
	q := url.Values{"enable": {fmt.Sprint(*enable)}}
	if *reason != "" {
		q.Set("reason", *reason)
	}
	path, what := "/v1/agent/maintenance", "Node"
	if *service != "" {
		path, what = "/v1/agent/service/maintenance/"+url.PathEscape(*service), "Service"
	}
	if err := c.do("PUT", path, q, nil); err != nil {
		return fail(stderr, "%v", err)
	}
	fmt.Fprintf(stdout, "%s maintenance is now %s\n", what, map[bool]string{true: "enabled", false: "disabled"}[*enable])
	return 0
}

func listMaintenance(c *apiClient, stdout, stderr io.Writer) int {
	var checks map[string]struct{ CheckID, ServiceID, Notes string }
	if err := c.do("GET", "/v1/agent/checks", nil, &checks); err != nil {
		return fail(stderr, "%v", err)
	}
	ids := make([]string, 0, len(checks))
	for id := range checks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ch := checks[id]
		switch {
		case id == local.NodeMaintCheckID:
			fmt.Fprintf(stdout, "Node:\n  Reason: %s\n", ch.Notes)
		case local.IsMaintenanceCheck(id):
			fmt.Fprintf(stdout, "Service:\n  ID: %s\n  Reason: %s\n", ch.ServiceID, ch.Notes)
		}
	}
	return 0
}

// runReload is Consul's `reload`: PUT /v1/agent/reload.
func runReload(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("reload", "Makes the agent re-read its config files' services and checks.", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if err := client().do("PUT", "/v1/agent/reload", nil, nil); err != nil {
		return fail(stderr, "reloading: %v", err)
	}
	fmt.Fprintln(stdout, "Configuration reload triggered")
	return 0
}
