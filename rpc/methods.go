package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"unicode"
)

// MethodName turns a Go method of a namespace into MoFang's dotted, lower
// case method name: ("Live", "StreamList") gives "Live.stream.list". It is
// a go-jsonrpc MethodNameFormatter, for Go clients of the API.
func MethodName(namespace, goName string) string {
	var b strings.Builder
	b.WriteString(namespace)
	for i, r := range goName {
		if unicode.IsUpper(r) {
			b.WriteByte('.')
			r = unicode.ToLower(r)
		} else if i == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// method is what the envelope knows of a registered method: its name and
// its params, one struct whose fields are the named params in order.
type method struct {
	name     string
	recv     reflect.Value // the API value
	fn       reflect.Value // the method's func, receiver first
	params   reflect.Type
	fields   []param // in declaration order: the positional order
	byName   map[string]int
	required []string
	costly   bool // limited per message and per IP (Limits.Costly)
	counts   callCounter
}

// costlyMethods are the methods anyone may call that cost far more than
// a query: each hashes or checks a password with bcrypt (tens of
// milliseconds of a core), or trades a refresh token. The envelope limits
// them per message and per client address before they run.
var costlyMethods = map[string]bool{
	"User.login":    true,
	"User.register": true,
	"User.refresh":  true,
}

// callCounter counts the calls of a method.
type callCounter struct {
	calls  atomic.Uint64
	errors atomic.Uint64
}

// param is one named param of a method.
type param struct {
	name     string
	required bool
}

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)

// describe reads the methods of an API value the way go-jsonrpc registers
// them, and checks each has the shape every MoFang method has:
//
//	func (a *API) Name(ctx context.Context, p Params) (*Result, error)
//
// with Params a struct whose json tags name the params. A field tagged
// `rpc:"required"` must be present.
func describe(namespace string, api any) ([]*method, error) {
	t := reflect.TypeOf(api)
	var out []*method
	for i := range t.NumMethod() {
		m := t.Method(i)
		ft := m.Type
		if ft.NumIn() != 3 || ft.In(1) != contextType || ft.In(2).Kind() != reflect.Struct ||
			ft.NumOut() != 2 || ft.Out(1) != errorType {
			return nil, fmt.Errorf("rpc: %s.%s must be func(context.Context, struct) (result, error)", namespace, m.Name)
		}
		md := &method{name: MethodName(namespace, m.Name), recv: reflect.ValueOf(api), fn: m.Func, params: ft.In(2), byName: map[string]int{}}
		md.costly = costlyMethods[md.name]
		for j := range md.params.NumField() {
			f := md.params.Field(j)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				return nil, fmt.Errorf("rpc: %s: param field %s needs a json name", md.name, f.Name)
			}
			p := param{name: name, required: f.Tag.Get("rpc") == "required"}
			md.byName[name] = len(md.fields)
			md.fields = append(md.fields, p)
			if p.required {
				md.required = append(md.required, name)
			}
		}
		out = append(out, md)
	}
	return out, nil
}

// invalidParams is a -32602 error with a message for the caller.
type invalidParams struct{ msg string }

func (e *invalidParams) Error() string { return "invalid params: " + e.msg }

// decode turns a call's params (absent, an object of named params or an
// array of positional ones) into the method's params struct, checking
// names, count and types.
func (m *method) decode(raw json.RawMessage) (reflect.Value, error) {
	raw = bytes.TrimSpace(raw)
	var obj []byte
	switch {
	case len(raw) == 0:
		obj = []byte("{}")
	case raw[0] == '{':
		obj = raw
	case raw[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return reflect.Value{}, &invalidParams{"params is not a valid array"}
		}
		if len(items) == 1 && len(items[0]) > 0 && items[0][0] == '{' {
			// go-jsonrpc's client sends the params struct as the one
			// positional param; no MoFang param is an object.
			return m.check(items[0])
		}
		if len(items) > len(m.fields) {
			return reflect.Value{}, &invalidParams{fmt.Sprintf("%s takes at most %d params, got %d", m.name, len(m.fields), len(items))}
		}
		buf := make([]byte, 0, len(raw)+16*len(items))
		buf = append(buf, '{')
		for i, it := range items {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, m.fields[i].name)
			buf = append(buf, ':')
			buf = append(buf, it...)
		}
		obj = append(buf, '}')
	default:
		return reflect.Value{}, errInvalidRequest
	}
	return m.check(obj)
}

// check decodes obj into a fresh params struct, refusing a wrong type, an
// unknown name or a missing required param with a message that names it.
func (m *method) check(obj []byte) (reflect.Value, error) {
	v := reflect.New(m.params)
	if len(obj) == 2 && len(m.required) == 0 { // "{}": nothing to check
		return v.Elem(), nil
	}
	if len(m.required) > 0 {
		var present map[string]json.RawMessage
		if err := json.Unmarshal(obj, &present); err != nil {
			return reflect.Value{}, &invalidParams{"params is not a valid object"}
		}
		for _, name := range m.required {
			if v, ok := present[name]; !ok || string(v) == "null" {
				return reflect.Value{}, &invalidParams{fmt.Sprintf("missing param %q", name)}
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return reflect.Value{}, &invalidParams{fmt.Sprintf("param %q must be %s, not %s", te.Field, jsonKind(te.Type), te.Value)}
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return reflect.Value{}, &invalidParams{"unknown param " + name}
		}
		return reflect.Value{}, &invalidParams{err.Error()}
	}
	return v.Elem(), nil
}

// invoke calls the method with decoded params and encodes its result into
// buf.
func (m *method) invoke(ctx context.Context, params reflect.Value, buf *bytes.Buffer) error {
	out := m.fn.Call([]reflect.Value{m.recv, reflect.ValueOf(ctx), params})
	if err, _ := out[1].Interface().(error); err != nil {
		return err
	}
	start := buf.Len()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out[0].Interface()); err != nil {
		return fmt.Errorf("encoding result: %w", err)
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	if callerOf(ctx).lang != langEN {
		res := localizeResult(ctx, buf.Bytes()[start:])
		buf.Truncate(start)
		buf.Write(res)
	}
	return nil
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "an object"
}

// appendJSONString appends s as a JSON string.
func appendJSONString(buf []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(buf, b...)
}
