// Package client keeps a local copy of a roster registry current with
// delta pulls, the loop `roster watch` runs.
//
// A tour:
//
//   - watcher.go: Watcher owns a catalog.Mirror. Its first Sync pulls the
//     full registry (GET /v1/roster/registry) and loads it; every later
//     Sync asks for the changes since the mirror's index
//     (GET /v1/roster/registry/delta?since=N&wait=…), which blocks on the
//     server until something changes. Each delta is applied and the
//     mirror's own hashcode compared with the server's: the two hash the
//     same content the same way (catalog/hash.go), so a lost, duplicated
//     or misapplied change shows as a mismatch at once. On a mismatch, a
//     gap, or 410 Gone (the server's delta ring no longer reaches back to
//     N) the watcher pulls the full registry exactly once and carries on.
//     Responses name their hash scheme (catalog.HashScheme); one of another
//     scheme, or none (an older server), is refused with
//     catalog.ErrHashScheme, which says to upgrade the older side. It costs
//     no fallback (a full pull could not match either); the mirror stays
//     as it was, and a refused full registry is asked for again with
//     If-None-Match, so while nothing changes the retries are 304s.
//     Watch is Sync in a loop with jittered backoff on errors, each
//     reported to Config.OnError.
//   - compact.go, compact_decode.go: the compact binary delta form the
//     watcher asks for (?format=compact): ~7 bytes per health flip, sent
//     with lean headers, about a tenth of the JSON form. Both sides live
//     here so the server (httpapi) and every client encode it one way.
//   - wire.go and metrics: pulls, full pulls, fallbacks, body bytes and
//     whole-response bytes as read off the connection (headers included),
//     so the saving of deltas over full pulls can be measured, not guessed.
//
// The Watcher sends If-None-Match with the hash it holds; when nothing
// changed the server answers 304 and the watcher only moves its index.
package client
