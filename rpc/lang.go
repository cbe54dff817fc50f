package rpc

import (
	"bytes"
	"context"
	"strconv"
	"strings"
)

// lang is a language the API's messages (errmsg) are written in.
type lang uint8

const (
	langEN lang = iota // English, the default
	langZH             // Simplified Chinese
)

// langOf reads an Accept-Language header: the tag of highest weight that
// is Chinese (zh, zh-CN, zh-Hans, any zh-…) or English decides, earlier
// first on equal weights; anything else, or nothing, is English.
func langOf(header string) lang {
	best, bestQ := langEN, -1.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		primary, _, _ := strings.Cut(tag, "-")
		var l lang
		switch primary {
		case "zh":
			l = langZH
		case "en":
			l = langEN
		default:
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		if q > bestQ && q > 0 {
			best, bestQ = l, q
		}
	}
	return best
}

// textIn returns the standard message of e in l, or "" when there is none.
func (e Errno) textIn(l lang) string {
	if l == langZH {
		return errnoTextZH[e]
	}
	return errnoText[e]
}

// localized gives st in the caller's language: a standard message (as
// fail builds) is swapped for its translation; a specific one (failf's,
// which carries details) stays as it is.
func localized(ctx context.Context, st Status) Status {
	l := callerOf(ctx).lang
	if l == langEN || st.Errmsg != st.Errno.Text() {
		return st
	}
	if s := st.Errno.textIn(l); s != "" {
		st.Errmsg = s
	}
	return st
}

// localizeResult rewrites the errmsg at the head of an encoded result
// ({"errno":N,"errmsg":"…", …}: every result embeds Status first) into the
// caller's language, when it is the errno's standard message. The result
// value itself is left alone (a method may return a shared one).
func localizeResult(ctx context.Context, b []byte) []byte {
	l := callerOf(ctx).lang
	if l == langEN || !bytes.HasPrefix(b, []byte(`{"errno":`)) {
		return b
	}
	rest := b[len(`{"errno":`):]
	i := bytes.IndexByte(rest, ',')
	if i <= 0 {
		return b
	}
	n, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	if err != nil {
		return b
	}
	e := Errno(n)
	text, ok := errnoText[e]
	if !ok || e == ErrnoOK {
		return b
	}
	head := appendJSONString([]byte(`,"errmsg":`), text)
	if !bytes.HasPrefix(rest[i:], head) {
		return b // a specific message
	}
	out := make([]byte, 0, len(b)+32)
	out = append(out, b[:len(`{"errno":`)+i]...)
	out = append(out, `,"errmsg":`...)
	out = appendJSONString(out, e.textIn(l))
	return append(out, rest[i+len(head):]...)
}
