package rpc_test

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestDiscover checks that rpc.discover describes exactly the registered
// methods, with their params.
func TestDiscover(t *testing.T) {
	e := newEnv(t, "sqlite")
	var doc struct {
		OpenRPC string `json:"openrpc"`
		Methods []struct {
			Name   string `json:"name"`
			Params []struct {
				Name     string         `json:"name"`
				Required bool           `json:"required"`
				Schema   map[string]any `json:"schema"`
			} `json:"params"`
			Result struct {
				Schema map[string]any `json:"schema"`
			} `json:"result"`
			Errnos map[string]string `json:"x-errnos"`
		} `json:"methods"`
	}
	resp := e.rpc("", "rpc.discover", map[string]any{})
	if resp.Error != nil {
		t.Fatalf("rpc.discover: %+v", resp.Error)
	}
	if err := json.Unmarshal(resp.Result, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range doc.Methods {
		names = append(names, m.Name)
	}
	registered := e.api.Methods()
	slices.Sort(registered)
	if !slices.Equal(names, registered) {
		t.Fatalf("rpc.discover lists %v\nregistered: %v", names, registered)
	}
	if !slices.Contains(names, "Live.stream.key.reset") {
		t.Fatal("rpc.discover does not list Live.stream.key.reset")
	}
	if doc.OpenRPC == "" {
		t.Fatal("no openrpc version")
	}
	for _, m := range doc.Methods {
		switch m.Name {
		case "Live.stream.read":
			if len(m.Params) != 2 || m.Params[0].Name != "room_id" || !m.Params[0].Required || m.Params[1].Required {
				t.Fatalf("Live.stream.read params: %+v", m.Params)
			}
			props := m.Result.Schema["properties"].(map[string]any)
			if _, ok := props["errno"]; !ok {
				t.Fatalf("Live.stream.read result schema has no errno: %v", m.Result.Schema)
			}
		case "Live.stream.key.reset":
			if len(m.Params) != 1 || m.Params[0].Name != "room_id" || m.Params[0].Required {
				t.Fatalf("Live.stream.key.reset params: %+v", m.Params)
			}
			props := m.Result.Schema["properties"].(map[string]any)
			if _, ok := props["data"]; !ok {
				t.Fatalf("Live.stream.key.reset result schema has no data: %v", m.Result.Schema)
			}
		case "User.login":
			if len(m.Params) != 2 || m.Params[1].Name != "password" || m.Params[1].Schema["type"] != "string" {
				t.Fatalf("User.login params: %+v", m.Params)
			}
		}
		if m.Errnos["1005"] == "" {
			t.Fatalf("%s: errnos not described", m.Name)
		}
	}
}
