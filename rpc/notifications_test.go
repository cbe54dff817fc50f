package rpc_test

import (
	"encoding/json"
	"testing"
)

// TestDiscoverNotifications checks that rpc.discover describes the
// Live.room.events notification (in "x-notifications", since OpenRPC has
// none) with its params and the fields of an event.
func TestDiscoverNotifications(t *testing.T) {
	e := newEnv(t, "sqlite")
	resp := e.rpc("", "rpc.discover", map[string]any{})
	if resp.Error != nil {
		t.Fatalf("rpc.discover: %+v", resp.Error)
	}
	var doc struct {
		Notifications []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
			Params      []struct {
				Name   string         `json:"name"`
				Schema map[string]any `json:"schema"`
			} `json:"params"`
		} `json:"x-notifications"`
	}
	if err := json.Unmarshal(resp.Result, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Notifications) < 4 || doc.Notifications[0].Name != "Live.room.events" || doc.Notifications[0].Description == "" ||
		doc.Notifications[1].Name != "Live.call.events" || doc.Notifications[2].Name != "Live.cohost.events" {
		t.Fatalf("x-notifications: %+v", doc.Notifications)
	}
	for _, n := range doc.Notifications[1:] {
		if len(n.Params) < 3 || n.Params[0].Name != "type" || n.Description == "" {
			t.Fatalf("%s params: %+v", n.Name, n.Params)
		}
		for _, p := range n.Params {
			if p.Name == "data" && len(p.Schema) != 0 {
				t.Fatalf("%s: data is any JSON, schema %v", n.Name, p.Schema)
			}
		}
	}
	hasNotify := false
	for _, n := range doc.Notifications {
		if n.Name == "Live.notify" {
			hasNotify = true
		}
	}
	if !hasNotify {
		t.Fatalf("x-notifications lacks Live.notify: %+v", doc.Notifications)
	}
	n := doc.Notifications[0]
	if len(n.Params) != 2 || n.Params[0].Name != "room_id" || n.Params[1].Name != "events" {
		t.Fatalf("Live.room.events params: %+v", n.Params)
	}
	items, _ := n.Params[1].Schema["items"].(map[string]any)
	props, _ := items["properties"].(map[string]any)
	for _, field := range []string{"seq", "type", "time", "user", "content", "gift", "online", "viewers"} {
		if _, ok := props[field]; !ok {
			t.Fatalf("event schema lacks %q: %v", field, items)
		}
	}
}
