package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mofang-live/mofang/rpc/wordfilter"
)

// TestWordFilterSetting: word-filter is a comma list or a file of one
// word per line; a missing file or an unknown mode is an error.
func TestWordFilterSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "words.txt")
	if err := os.WriteFile(file, []byte("# bad words\nspam\n\n傻瓜\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value, mode string
		words       int
		fail        bool
	}{
		{"", "mask", 0, false},
		{"spam, scam ,广告", "mask", 3, false},
		{file, "refuse", 2, false},
		{"/no/such/words.txt", "mask", 0, true},
		{"spam", "drop", 0, true},
	} {
		c := c
		l, err := (&config{WordFilter: c.value, WordFilterMode: c.mode}).wordFilter()
		if (err != nil) != c.fail || l.Len() != c.words {
			t.Errorf("word-filter %q mode %s: %d words, error %v", c.value, c.mode, l.Len(), err)
		}
		if c.value == file && l.Mode() != wordfilter.Refuse {
			t.Errorf("file list mode %s", l.Mode())
		}
	}
}
