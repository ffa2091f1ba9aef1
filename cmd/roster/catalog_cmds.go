package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
)

// `roster catalog services|nodes`, as Consul's `consul catalog`: read
// the cluster-wide catalog (not the local agent's view) and print it in
// Consul's columns.

func runCatalog(args []string, stdout, stderr io.Writer) int {
	return runSubcommand("catalog", "Usage: roster catalog <services|nodes> [options]",
		map[string]func([]string, io.Writer, io.Writer) int{
			"services": runCatalogServices, "nodes": runCatalogNodes,
		}, args, stdout, stderr)
}

func runCatalogServices(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("catalog services", "Lists the services in the catalog.", stderr)
	tags := fs.Bool("tags", false, "Show each service's tags.")
	node := fs.String("node", "", "List only the services registered on this node.")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "Too many arguments (expected 0, got %d)\n", fs.NArg())
		return 1
	}
	services, err := catalogServices(client(), *node)
	if err != nil {
		return fail(stderr, "listing services: %v", err)
	}
	if len(services) == 0 {
		fmt.Fprintln(stderr, "No services match the given query - try expanding your search.")
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	for _, name := range sortedKeys(services) {
		if *tags {
			t := append([]string(nil), services[name]...)
			sort.Strings(t)
			fmt.Fprintf(w, "%s\t%s\n", name, strings.Join(t, ","))
			continue
		}
		fmt.Fprintln(w, name)
	}
	return 0
}

// catalogServices is name → tags, cluster-wide or for one node.
func catalogServices(c *apiClient, node string) (map[string][]string, error) {
	services := map[string][]string{}
	if node == "" {
		return services, c.do("GET", "/v1/catalog/services", nil, &services)
	}
	var ns struct {
		Services []struct {
			Service string
			Tags    []string
		}
	}
	if err := c.do("GET", "/v1/catalog/node-services/"+url.PathEscape(node), nil, &ns); err != nil {
		return nil, err
	}
	for _, s := range ns.Services {
		services[s.Service] = unionTags(services[s.Service], s.Tags)
	}
	return services, nil
}

func unionTags(have, add []string) []string {
	for _, t := range add {
		found := false
		for _, h := range have {
			found = found || h == t
		}
		if !found {
			have = append(have, t)
		}
	}
	return have
}

// catalogNode holds the fields `catalog nodes` prints; a
// /v1/catalog/service element carries the same ones under the same names
// except Meta, which it calls NodeMeta.
type catalogNode struct {
	ID, Node, Address, Datacenter string
	TaggedAddresses, Meta         map[string]string
	NodeMeta                      map[string]string
}

func runCatalogNodes(args []string, stdout, stderr io.Writer) int {
	fs, client := newCmdFlags("catalog nodes", "Lists the nodes in the catalog.", stderr)
	service := fs.String("service", "", "List only the nodes running this service.")
	detailed := fs.Bool("detailed", false, "Show full node IDs, tagged addresses and node meta.")
	if err := fs.Parse(args); err != nil {
		return exitUsage(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "Too many arguments (expected 0, got %d)\n", fs.NArg())
		return 1
	}
	nodes, err := catalogNodes(client(), *service)
	if err != nil {
		return fail(stderr, "listing nodes: %v", err)
	}
	if len(nodes) == 0 {
		fmt.Fprintln(stderr, "No nodes match the given query - try expanding your search.")
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	if *detailed {
		fmt.Fprintln(w, "Node\tID\tAddress\tDC\tTaggedAddresses\tMeta")
	} else {
		fmt.Fprintln(w, "Node\tID\tAddress\tDC")
	}
	for _, n := range nodes {
		if *detailed {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, n.ID, n.Address, n.Datacenter,
				formatTags(n.TaggedAddresses), formatTags(n.Meta))
			continue
		}
		id := n.ID
		if len(id) > 8 {
			id = id[:8]
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n.Node, id, n.Address, n.Datacenter)
	}
	return 0
}

// catalogNodes lists the nodes sorted by name, each once (a node running
// two instances of -service appears once).
func catalogNodes(c *apiClient, service string) ([]catalogNode, error) {
	var nodes []catalogNode
	if service == "" {
		return nodes, c.do(http.MethodGet, "/v1/catalog/nodes", nil, &nodes)
	}
	var instances []catalogNode
	if err := c.do(http.MethodGet, "/v1/catalog/service/"+url.PathEscape(service), nil, &instances); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, n := range instances {
		if seen[n.Node] {
			continue
		}
		seen[n.Node] = true
		n.Meta = n.NodeMeta
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node < nodes[j].Node })
	return nodes, nil
}
