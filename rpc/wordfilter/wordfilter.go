// Package wordfilter finds the words of a list in a comment, whatever
// their case, Chinese words included (a match is a substring on runes),
// and masks them with '*' or tells that the comment must be refused.
package wordfilter

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Modes of a list: what a comment holding one of its words gets.
const (
	Mask   = "mask"   // the word's characters become '*'
	Refuse = "refuse" // the comment is refused
)

// Limits of a list's words.
const (
	MaxWordLen = 32 // characters in one word
)

// List is a set of words with one mode. The zero List matches nothing.
type List struct {
	mode  string
	words [][]rune // folded
	// orig are the words as given (trimmed, deduplicated), for showing.
	orig []string
}

// New returns a list of words (blank ones dropped, duplicates kept once,
// case folded) with mode Mask or Refuse.
func New(mode string, words []string) (*List, error) {
	if mode != Mask && mode != Refuse {
		return nil, fmt.Errorf("wordfilter: mode %q: want %q or %q", mode, Mask, Refuse)
	}
	l := &List{mode: mode}
	seen := map[string]bool{}
	for _, w := range words {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		if msg := CheckWord(w); msg != "" {
			return nil, fmt.Errorf("wordfilter: word %q: %s", w, msg)
		}
		f := fold(w)
		if seen[string(f)] {
			continue
		}
		seen[string(f)] = true
		l.words = append(l.words, f)
		l.orig = append(l.orig, w)
	}
	return l, nil
}

// CheckWord returns why w cannot be a word of a list, or "".
func CheckWord(w string) string {
	switch {
	case !utf8.ValidString(w):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(w) > MaxWordLen:
		return fmt.Sprintf("must be at most %d characters", MaxWordLen)
	case strings.ContainsFunc(w, unicode.IsControl):
		return "must not hold control characters"
	}
	return ""
}

// Read reads a list from r: one word per line, blank lines and lines
// starting with '#' skipped.
func Read(mode string, r io.Reader) (*List, error) {
	var words []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		words = append(words, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("wordfilter: reading list: %w", err)
	}
	return New(mode, words)
}

// Mode is the list's mode.
func (l *List) Mode() string {
	if l == nil || l.mode == "" {
		return Mask
	}
	return l.mode
}

// Words returns the list's words as given.
func (l *List) Words() []string {
	if l == nil {
		return []string{}
	}
	return append([]string{}, l.orig...)
}

// Len is the number of words.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.words)
}

// fold maps a string to lower case rune by rune (one rune for one, so
// positions stay).
func fold(s string) []rune {
	rs := []rune(s)
	for i, r := range rs {
		rs[i] = unicode.ToLower(r)
	}
	return rs
}

// Apply checks content against the lists in order: if a word of a Refuse
// list is in it, refused is true; otherwise every word of the Mask lists
// found in it is masked and the result returned. Nil lists are skipped.
func Apply(content string, lists ...*List) (out string, refused bool) {
	orig := []rune(content)
	folded := fold(content)
	var masked []bool
	for _, l := range lists {
		if l == nil {
			continue
		}
		for _, w := range l.words {
			for i := 0; i+len(w) <= len(folded); i++ {
				if !hasAt(folded, w, i) {
					continue
				}
				if l.mode == Refuse {
					return content, true
				}
				if masked == nil {
					masked = make([]bool, len(orig))
				}
				for j := i; j < i+len(w); j++ {
					masked[j] = true
				}
			}
		}
	}
	if masked == nil {
		return content, false
	}
	for i, m := range masked {
		if m {
			orig[i] = '*'
		}
	}
	return string(orig), false
}

// hasAt reports whether w is in s at i.
func hasAt(s, w []rune, i int) bool {
	for j, r := range w {
		if s[i+j] != r {
			return false
		}
	}
	return true
}
