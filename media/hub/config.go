package hub

import (
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Hub. Zero values take the documented defaults.
type Config struct {
	// PublisherGrace is how long a stream whose publisher dropped waits,
	// readers attached, for a publisher to take it back (default 10 s;
	// negative: end at once).
	PublisherGrace time.Duration

	// RingSize is the number of packets kept per stream, the GOP cache and
	// the bound of every reader's queue; rounded up to a power of two
	// (default 1024, about 13 s of 30 fps video with AAC).
	RingSize int
	// ReaderQueue is how many packets a reader may lag before it skips to
	// the newest key frame (default 256).
	ReaderQueue int
	// MaxReaderSkips is how many skips within 30 s a reader is allowed
	// before it is disconnected (default 3).
	MaxReaderSkips int
	// WriteCoalesce spaces a reader's writes: the next write comes this
	// long after the last one began (after the packet that woke it on an
	// idle stream), so that several packets go out in one write and a
	// packet waits at most about this long (default 200 ms; negative:
	// write each packet at once). A new reader's first write (headers and
	// GOP) is never delayed.
	WriteCoalesce time.Duration

	// AuthTimeout bounds each Authorizer call (default 5 s).
	AuthTimeout time.Duration
	// Authorizer decides who may publish and play; nil allows everything.
	Authorizer Authorizer
	// Events hears of publishes starting and stopping; may be nil.
	Events EventSink
	// Logger receives the hub's logs (default slog.Default()).
	Logger *slog.Logger

	// OnStreamStart, if set, is called when a stream starts (not when a
	// publisher takes a stream back), before its first packet, with the
	// hub's lock held: it must not block nor call the hub. The engine
	// starts the stream's HLS output and recording from it.
	OnStreamStart func(s *Stream)

	// Claims, if set, admits the publishers that are not relays and is
	// told when they leave and when streams end: a node of a cluster
	// claims its streams with it (see Claims).
	Claims Claims
	// OnMissingStream, if set, is called by PlayStream when a reader asks
	// for a stream that is not here; it returns true when the stream is
	// coming (the engine started a relay from the node that publishes
	// it), and the reader waits for it. It must not block.
	OnMissingStream func(name string) bool
	// MissingStreamWait bounds that wait (default 3 s).
	MissingStreamWait time.Duration

	// eventQueue bounds the events waiting for the event goroutine
	// (default eventQueue; the tests make it small).
	eventQueue int
}

func (c *Config) setDefaults() error {
	if c.PublisherGrace == 0 {
		c.PublisherGrace = 10 * time.Second
	}
	if c.Authorizer == nil {
		c.Authorizer = allowAll{}
	}
	if c.Events == nil {
		c.Events = nopEvents{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.eventQueue <= publishEventReserve {
		c.eventQueue = eventQueue
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 5 * time.Second
	}
	if c.RingSize <= 0 {
		c.RingSize = 1024
	}
	size := 16
	for size < c.RingSize {
		size <<= 1
	}
	c.RingSize = size
	if c.ReaderQueue <= 0 {
		c.ReaderQueue = 256
	}
	if c.ReaderQueue > c.RingSize {
		c.ReaderQueue = c.RingSize
	}
	if c.WriteCoalesce == 0 {
		c.WriteCoalesce = 200 * time.Millisecond
	}
	if c.MissingStreamWait <= 0 {
		c.MissingStreamWait = defaultMissingStreamWait
	}
	if c.MaxReaderSkips <= 0 {
		c.MaxReaderSkips = 3
	}
	if c.ReaderQueue < 1 || c.RingSize < 16 {
		return fmt.Errorf("invalid queue sizes (ring %d, reader queue %d)", c.RingSize, c.ReaderQueue)
	}
	return nil
}
