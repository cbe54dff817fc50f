//go:build !linux

package hub

import "net"

// write writes bufs to the connection with net.Buffers.
func (cs *ConnSink) write(bufs *net.Buffers) (int64, error) {
	return bufs.WriteTo(cs.Conn)
}
