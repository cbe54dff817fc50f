package rpc

import (
	"testing"
	"unicode"
)

// The Chinese table has every errno of the English one and nothing else,
// each with a message in Chinese (1000 stays "ok").
func TestErrnoTextZHComplete(t *testing.T) {
	for e, en := range errnoText {
		zh, ok := errnoTextZH[e]
		switch {
		case !ok:
			t.Errorf("errno %d (%q) has no Chinese message", e, en)
		case e == ErrnoOK:
			if zh != "ok" {
				t.Errorf("errno 1000: %q, want ok", zh)
			}
		case zh == "" || zh == en || !hasHan(zh):
			t.Errorf("errno %d: Chinese message %q is not Chinese", e, zh)
		}
	}
	for e := range errnoTextZH {
		if _, ok := errnoText[e]; !ok {
			t.Errorf("errno %d has a Chinese message but no English one", e)
		}
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

func TestLangOf(t *testing.T) {
	for _, c := range []struct {
		header string
		want   lang
	}{
		{"", langEN},
		{"zh", langZH},
		{"zh-CN", langZH},
		{"zh-Hans", langZH},
		{"ZH-hans-CN", langZH},
		{"zh-CN,zh;q=0.9,en;q=0.8", langZH},
		{"en-US,en;q=0.9,zh-CN;q=0.8", langEN},
		{"fr-FR,fr;q=0.9,zh;q=0.5", langZH},
		{"fr-FR,de", langEN},
		{"en;q=0.5,zh;q=0.7", langZH},
		{"zh;q=0", langEN},
		{"zh;q=2", langEN},
		{"zh;q=abc, en", langEN},
		{"*", langEN},
		{",,;;==", langEN},
	} {
		if got := langOf(c.header); got != c.want {
			t.Errorf("langOf(%q) = %d, want %d", c.header, got, c.want)
		}
	}
}
