package rpc

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/mofang-live/mofang/rpc/roomhub"
)

// discoverAPI is the rpc namespace: the OpenRPC service discovery method.
type discoverAPI struct{ s *Server }

// OpenRPC is an OpenRPC document (https://spec.open-rpc.org) describing
// every method of the server. It is generated from the registered
// methods' Go types, so it cannot drift from them.
type OpenRPC struct {
	OpenRPC string          `json:"openrpc"`
	Info    OpenRPCInfo     `json:"info"`
	Methods []OpenRPCMethod `json:"methods"`
	// Notifications are the messages the server sends a websocket of its
	// own accord. OpenRPC describes only methods a client calls, so they
	// are an extension: "x-notifications".
	Notifications []OpenRPCNotification `json:"x-notifications"`
}

// OpenRPCNotification describes a notification the server sends: its
// method name and params, never called by clients and never answered.
type OpenRPCNotification struct {
	Name           string           `json:"name"`
	Description    string           `json:"description"`
	ParamStructure string           `json:"paramStructure"`
	Params         []OpenRPCContent `json:"params"`
}

// OpenRPCInfo is the document's info object.
type OpenRPCInfo struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

// OpenRPCMethod describes one method. Errnos, which come inside results,
// are listed in the extension "x-errnos" (errno: meaning).
type OpenRPCMethod struct {
	Name           string            `json:"name"`
	ParamStructure string            `json:"paramStructure"`
	Params         []OpenRPCContent  `json:"params"`
	Result         OpenRPCContent    `json:"result"`
	Errors         []OpenRPCError    `json:"errors"`
	Errnos         map[string]string `json:"x-errnos"`
}

// OpenRPCContent is a param or a result: a name and a JSON schema.
type OpenRPCContent struct {
	Name     string         `json:"name"`
	Required bool           `json:"required,omitempty"`
	Schema   map[string]any `json:"schema"`
}

// OpenRPCError is a JSON-RPC error a method may answer.
type OpenRPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Discover returns the OpenRPC document of this server.
func (a *discoverAPI) Discover(ctx context.Context, p NoParams) (*OpenRPC, error) {
	return a.s.openRPC(), nil
}

func (s *Server) openRPC() *OpenRPC {
	doc := &OpenRPC{
		OpenRPC: "1.2.6",
		Info: OpenRPCInfo{
			Title:   "MoFang Live",
			Version: s.cfg.Version,
			Description: "MoFang's live room API. Every result carries errno (1000: ok) and errmsg; " +
				"errnos are listed under x-errnos. Send the access token as \"Authorization: jwt <token>\".",
		},
	}
	errnos := map[string]string{}
	for e, text := range errnoText {
		errnos[strconv.Itoa(int(e))] = text
	}
	std := []OpenRPCError{
		{CodeInvalidParams, codeText[CodeInvalidParams]},
		{CodeInternalError, codeText[CodeInternalError]},
	}
	for _, name := range s.methodNames() {
		m := s.methods[name]
		om := OpenRPCMethod{Name: name, ParamStructure: "either", Params: []OpenRPCContent{}, Errors: std, Errnos: errnos}
		for i, f := range m.fields {
			om.Params = append(om.Params, OpenRPCContent{
				Name:     f.name,
				Required: f.required,
				Schema:   schemaOf(m.params.Field(i).Type, map[reflect.Type]bool{}),
			})
		}
		om.Result = OpenRPCContent{Name: "result", Schema: schemaOf(m.fn.Type().Out(0), map[reflect.Type]bool{})}
		doc.Methods = append(doc.Methods, om)
	}
	events := reflect.TypeFor[RoomEvents]()
	doc.Notifications = []OpenRPCNotification{{
		Name: roomhub.Method,
		Description: "Sent by the server to a websocket that joined a room (Live.room.join), never called: " +
			"the room's events in order of seq (online first, then join, leave, comment, like, gift), " +
			"a socket gets about one message per " + s.cfg.Limits.EventInterval.String() + " at most, holding every event it has not had yet. Params are by name; a websocket opened with " +
			"?events=array gets them as a one-element array holding that object, as go-jsonrpc's client handlers take them.",
		ParamStructure: "by-name",
		Params: []OpenRPCContent{
			{Name: "room_id", Required: true, Schema: schemaOf(events.Field(0).Type, map[reflect.Type]bool{})},
			{Name: "events", Required: true, Schema: schemaOf(events.Field(1).Type, map[reflect.Type]bool{})},
		},
	}}
	for _, n := range []struct {
		name, desc string
		params     reflect.Type
	}{
		{CallEventsMethod, "Sent by the server to the websockets of one party of a 1:1 call (Live.call.*), never called: " +
			"invite, accept, answered, reject, hangup, timeout, signal (the other party's SDP or ICE data) and relay.", reflect.TypeFor[CallEvent]()},
		{CohostEventsMethod, "Sent by the server to the websockets of one user in a room, never called: " +
			"co-host invitations, requests and their answers (invite, request, accept, reject, cancel, timeout). " +
			"The room hears of the co-host in \"cohost\" room events.", reflect.TypeFor[CohostEvent]()},
		{NotifyMethod, "Sent by the server to every websocket opened with a valid token, in a room or none, never called: " +
			"type \"live\" when a host the user follows (User.follow) goes live, once per live (a publisher back within the grace period is the same live); " +
			"title is the scheduled live's when the live started one (schedule_id).", reflect.TypeFor[Notice]()},
	} {
		on := OpenRPCNotification{Name: n.name, Description: n.desc, ParamStructure: "by-name"}
		for i := range n.params.NumField() {
			f := n.params.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			on.Params = append(on.Params, OpenRPCContent{Name: name, Required: !strings.Contains(opts, "omitempty"), Schema: schemaOf(f.Type, map[reflect.Type]bool{})})
		}
		doc.Notifications = append(doc.Notifications, on)
	}
	return doc
}

// methodNames lists the registered methods, aliases left out, sorted.
func (s *Server) methodNames() []string {
	var names []string
	for name, m := range s.methods {
		if name == m.name {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

var (
	roomIDType     = reflect.TypeFor[RoomID]()
	rawMessageType = reflect.TypeFor[json.RawMessage]()
)

// schemaOf returns the JSON schema of values of t as encoding/json
// writes and reads them.
func schemaOf(t reflect.Type, seen map[reflect.Type]bool) map[string]any {
	if t == rawMessageType {
		return map[string]any{} // any JSON value
	}
	if t == roomIDType {
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "integer", "minimum": 1},
			map[string]any{"type": "string", "pattern": "^[0-9]+$"},
		}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), seen)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), seen)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), seen)}
	case reflect.Struct:
		if seen[t] {
			return map[string]any{"type": "object"}
		}
		seen[t] = true
		defer delete(seen, t)
		props := map[string]any{}
		var required []string
		addFields(t, props, &required, seen)
		s := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			sort.Strings(required)
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}

// addFields adds the JSON fields of struct t, flattening embedded structs
// as encoding/json does.
func addFields(t reflect.Type, props map[string]any, required *[]string, seen map[reflect.Type]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			addFields(f.Type, props, required, seen)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, seen)
		if !strings.Contains(opts, "omitempty") {
			*required = append(*required, name)
		}
	}
}
