package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/mofang-live/mofang/rpc/wordfilter"
)

// wordFilter reads the word-filter setting: the name of a file of one
// word per line, or a comma-separated list of words. A value that names
// no file is a list, unless it looks like a path (holds a '/' and no
// comma), which must then exist. Empty: no list.
func (c *config) wordFilter() (*wordfilter.List, error) {
	v := strings.TrimSpace(c.WordFilter)
	if v == "" {
		return nil, nil
	}
	f, err := os.Open(v)
	switch {
	case err == nil:
		defer f.Close()
		l, err := wordfilter.Read(c.WordFilterMode, f)
		if err != nil {
			return nil, fmt.Errorf("word-filter %s: %w", v, err)
		}
		return l, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("word-filter: %w", err)
	case strings.Contains(v, "/") && !strings.Contains(v, ","):
		return nil, fmt.Errorf("word-filter: %w", err)
	}
	l, err := wordfilter.New(c.WordFilterMode, strings.Split(v, ","))
	if err != nil {
		return nil, fmt.Errorf("word-filter: %w", err)
	}
	return l, nil
}
