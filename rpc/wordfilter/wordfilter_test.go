package wordfilter

import (
	"strings"
	"testing"
)

// TestApply: words are found whatever their case, Chinese ones too, and
// masked rune for rune; a refuse list's word refuses the comment.
func TestApply(t *testing.T) {
	mask, err := New(Mask, []string{"Spam", "傻瓜", " ", "spam"})
	if err != nil {
		t.Fatal(err)
	}
	refuse, err := New(Refuse, []string{"广告"})
	if err != nil {
		t.Fatal(err)
	}
	if mask.Len() != 2 {
		t.Fatalf("words %v, want the duplicate and blank dropped", mask.Words())
	}
	for _, c := range []struct{ in, out string }{
		{"no bad words", "no bad words"},
		{"SPAM and sPaM", "**** and ****"},
		{"你是傻瓜吗", "你是**吗"},
		{"spamspam", "********"},
		{"İspam", "İ****"},
	} {
		got, refused := Apply(c.in, mask, refuse, nil)
		if refused || got != c.out {
			t.Errorf("Apply(%q) = %q, %v; want %q", c.in, got, refused, c.out)
		}
	}
	if _, refused := Apply("看广告 spam", mask, refuse); !refused {
		t.Error("a refuse list's word did not refuse")
	}
	if _, err := New("drop", nil); err == nil {
		t.Error("an unknown mode was taken")
	}
	if _, err := New(Mask, []string{strings.Repeat("x", MaxWordLen+1)}); err == nil {
		t.Error("a too long word was taken")
	}
	l, err := Read(Refuse, strings.NewReader("# comment\n\n foo \nBAR\n"))
	if err != nil || l.Len() != 2 || l.Mode() != Refuse {
		t.Fatalf("Read: %v %v", l.Words(), err)
	}
}
