package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// semaphore is Consul's api.Semaphore: up to limit sessions hold it at
// once. Each contender acquires its own key PREFIX/<session> (so its
// entry dies with its session), and the holders are listed in
// PREFIX/.lock, changed only by check-and-set so concurrent contenders
// never both take the last slot. A holder whose contender key lost its
// session is pruned by whoever next updates the list.
type semaphore struct {
	c       *apiClient
	prefix  string
	session string
	limit   int
}

// semaphoreLock is the JSON value of PREFIX/.lock.
type semaphoreLock struct {
	Limit   int
	Holders map[string]bool
}

func (s *semaphore) lockKey() string { return s.prefix + "/.lock" }

func (s *semaphore) acquire(ctx context.Context) error {
	q := url.Values{"acquire": {s.session}, "flags": {strconv.FormatUint(semaphoreFlagValue, 10)}}
	ok, err := kvWrite(s.c, "PUT", s.prefix+"/"+s.session, q, nil)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("could not create the contender key")
	}
	var index uint64
	for ctx.Err() == nil {
		pairs, next, err := getBlocking(ctx, s.c, s.prefix, true, index)
		if err != nil {
			return err
		}
		lock, modify, err := s.decode(pairs)
		if err != nil {
			return err
		}
		if lock.Holders[s.session] {
			return nil
		}
		if len(lock.Holders) >= s.limit {
			index = next // full: wait for a change
			continue
		}
		lock.Holders[s.session] = true
		won, err := s.write(lock, modify)
		if err != nil || won {
			return err
		}
		index = 0 // lost the check-and-set race: read again at once
	}
	return ctx.Err()
}

// decode reads the holder list from a recursive read of the prefix and
// prunes holders whose contender key no longer has a session.
func (s *semaphore) decode(pairs []kvPair) (semaphoreLock, uint64, error) {
	lock := semaphoreLock{Limit: s.limit, Holders: map[string]bool{}}
	var modify uint64
	live := map[string]bool{}
	for _, p := range pairs {
		if p.Key == s.lockKey() {
			if p.Flags != semaphoreFlagValue {
				return lock, 0, fmt.Errorf("existing key %s does not match semaphore use (flags %#x)", p.Key, p.Flags)
			}
			if err := json.Unmarshal(p.Value, &lock); err != nil {
				return lock, 0, fmt.Errorf("%s is not a semaphore: %v", p.Key, err)
			}
			modify = p.ModifyIndex
		} else if p.Session != "" {
			live[p.Session] = true
		}
	}
	if lock.Limit != s.limit {
		return lock, 0, fmt.Errorf("semaphore limit conflict (lock: %d, local: %d)", lock.Limit, s.limit)
	}
	if lock.Holders == nil {
		lock.Holders = map[string]bool{}
	}
	for h := range lock.Holders {
		if !live[h] {
			delete(lock.Holders, h)
		}
	}
	return lock, modify, nil
}

// write stores the holder list if it is still at modify (0: absent).
func (s *semaphore) write(lock semaphoreLock, modify uint64) (bool, error) {
	b, err := json.Marshal(lock)
	if err != nil {
		return false, err
	}
	q := url.Values{"cas": {strconv.FormatUint(modify, 10)}, "flags": {strconv.FormatUint(semaphoreFlagValue, 10)}}
	return kvWrite(s.c, "PUT", s.lockKey(), q, b)
}

func (s *semaphore) monitor(ctx context.Context, lost chan<- error) {
	var index uint64
	for ctx.Err() == nil {
		pairs, next, err := getBlocking(ctx, s.c, s.prefix, true, index)
		if err != nil {
			pause(ctx, time.Second)
			continue
		}
		if lock, _, err := s.decode(pairs); err != nil || !lock.Holders[s.session] {
			report(lost, fmt.Errorf("this session no longer holds a slot of %s", s.prefix))
			return
		}
		index = next
	}
}

// semaphoreReleaseAttempts bounds the check-and-set retries of release.
const semaphoreReleaseAttempts = 20

func (s *semaphore) release() error {
	for range semaphoreReleaseAttempts {
		pairs, _, err := getBlocking(context.Background(), s.c, s.prefix, true, 0)
		if err != nil {
			return err
		}
		lock, modify, err := s.decode(pairs)
		if err != nil {
			return err
		}
		if !lock.Holders[s.session] {
			break
		}
		delete(lock.Holders, s.session)
		if won, err := s.write(lock, modify); err != nil || won {
			if err != nil {
				return err
			}
			break
		}
	}
	_, err := kvWrite(s.c, "DELETE", s.prefix+"/"+s.session, nil, nil)
	return err
}
