package store

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// listCache keeps recent pages of ListRooms. The room list is read on
// every refresh of every client's room list page and changes rarely;
// reading it from the database each time made the database the limit of
// Live.stream.list. A write through the Store (a room or user changed)
// drops every entry at once; writes by other processes show once an entry
// is older than the TTL.
type listCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	gen     uint64
	entries map[string]listEntry
}

type listEntry struct {
	gen   uint64
	at    time.Time
	rooms []RoomWithOwner
	total int
}

// maxListEntries bounds the cache: the names filter makes keys of its own.
const maxListEntries = 256

func newListCache(ttl time.Duration) *listCache {
	return &listCache{ttl: ttl, entries: map[string]listEntry{}}
}

func (c *listCache) setTTL(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ttl = d
	c.entries = map[string]listEntry{}
}

func listKey(opt ListRoomsOptions) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(opt.Offset))
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(opt.Limit))
	if opt.Names != nil {
		b.WriteByte('/')
		b.WriteString(strings.Join(opt.Names, ","))
	}
	return b.String()
}

// get returns a fresh entry for key, and the generation a new entry must
// be stored with. The rooms are shared: callers must not modify them.
func (c *listCache) get(key string, now time.Time) ([]RoomWithOwner, int, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || e.gen != c.gen || now.Sub(e.at) >= c.ttl {
		return nil, 0, c.gen, false
	}
	return e.rooms, e.total, c.gen, true
}

// put stores a page read at generation gen, unless a write came since.
func (c *listCache) put(key string, gen uint64, now time.Time, rooms []RoomWithOwner, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl <= 0 || gen != c.gen {
		return
	}
	if len(c.entries) >= maxListEntries {
		c.entries = map[string]listEntry{}
	}
	c.entries[key] = listEntry{gen: gen, at: now, rooms: rooms, total: total}
}

// invalidate drops every entry: something listed changed.
func (c *listCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
