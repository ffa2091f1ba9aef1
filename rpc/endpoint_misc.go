package rpc

import (
	"errors"
	"fmt"

	"roster/catalog"
)

// Coordinate is the "Coordinate" endpoint: network coordinates of nodes.
type Coordinate struct {
	c *endpointCore
}

// Update stores a batch of coordinates.
func (e *Coordinate) Update(args *CoordinateUpdateRequest, reply *struct{}) error {
	return e.c.write("Coordinate.Update", args, reply, func() error {
		for i, u := range args.Updates {
			if u.Node == "" {
				return fmt.Errorf("Must provide node (coordinate update %d has none)", i)
			}
		}
		if len(args.Updates) == 0 {
			return nil
		}
		_, err := e.c.propose(&args.WriteRequest, &catalog.CoordinateBatchRequest{Updates: args.Updates})
		return err
	})
}

// ListNodes lists every node's coordinate.
func (e *Coordinate) ListNodes(args *DCSpecificRequest, reply *IndexedCoordinates) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Coordinate.ListNodes", args, args, reply); done {
		return err
	}
	f, err := compileFilter(args.Filter, catalog.CoordinateEntry{})
	if err != nil {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchTable(catalog.TableCoordinates), func() (uint64, error) {
		coords, idx := store.Coordinates()
		if coords, err = applyFilter(f, coords); err != nil {
			return 0, err
		}
		reply.Coordinates = coords
		return idx, nil
	})
}

// Roster is the "Roster" endpoint: roster's own delta pulls of the
// service registry (see catalog/delta.go).
type Roster struct {
	c *endpointCore
}

// Registry returns the full registry with its index and hashcode.
func (e *Roster) Registry(args *DCSpecificRequest, reply *RegistryResponse) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Roster.Registry", args, args, reply); done {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchRegistry(), func() (uint64, error) {
		reply.Registry = store.Registry()
		return store.Index(catalog.WatchRegistry()), nil
	})
}

// Delta returns the registry changes after Since; Truncated when the delta
// ring no longer reaches back that far.
func (e *Roster) Delta(args *DeltaRequest, reply *DeltaResponse) error {
	if done, err := e.c.d.Forwarder.Forward(e.c.d.Ctx, "Roster.Delta", args, args, reply); done {
		return err
	}
	store := e.c.d.Store
	return e.c.read(&args.QueryOptions, &reply.QueryMeta, catalog.WatchRegistry(), func() (uint64, error) {
		idx := store.Index(catalog.WatchRegistry())
		d, err := store.Since(args.Since)
		reply.Delta, reply.Truncated = d, false
		if errors.Is(err, catalog.ErrTruncated) {
			reply.Delta, reply.Truncated = catalog.Delta{}, true
			return idx, nil
		}
		return idx, err
	})
}
