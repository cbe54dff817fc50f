package schema

import "testing"

// TestDialectsMatch: every dialect has the same migrations, numbered
// 1, 2, 3... without a gap, so a database moves between them.
func TestDialectsMatch(t *testing.T) {
	lite, err := Migrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	my, err := Migrations(MySQL)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(my) {
		t.Fatalf("%d SQLite migrations, %d MySQL ones", len(lite), len(my))
	}
	for i := range lite {
		if lite[i].Version != i+1 || lite[i].Name != my[i].Name {
			t.Errorf("migration %d: SQLite %d %s, MySQL %d %s", i+1, lite[i].Version, lite[i].Name, my[i].Version, my[i].Name)
		}
		if lite[i].SQL == "" || my[i].SQL == "" {
			t.Errorf("migration %s is empty", lite[i].Name)
		}
	}
}
