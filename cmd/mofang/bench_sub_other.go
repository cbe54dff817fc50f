//go:build !linux

package main

import "errors"

// subReader reads benchSubs' sockets: on Linux only (epoll).
type subReader struct{}

func newSubReader() (*subReader, error) {
	return nil, errors.New("the room benchmarks need Linux (epoll)")
}

func (r *subReader) add(*benchSub) error { return errors.New("the room benchmarks need Linux") }

func (r *subReader) close() {}
