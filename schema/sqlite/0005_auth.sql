-- User names are unique whatever the case of their ASCII letters ("Alice"
-- is "alice"); other letters compare exactly, as on MySQL (0005 there), so
-- that a database moves between the two. SQLite's lower() folds ASCII
-- letters only. Later accounts whose names clash with an older one are
-- renamed "<name>_<id>"; the oldest keeps its name.
ALTER TABLE mf_user ADD COLUMN name_key TEXT GENERATED ALWAYS AS (lower(name)) VIRTUAL;
UPDATE mf_user SET name = name || '_' || id
 WHERE EXISTS (SELECT 1 FROM mf_user o WHERE o.name_key = mf_user.name_key AND o.id < mf_user.id);
CREATE UNIQUE INDEX IF NOT EXISTS mf_user_name_key ON mf_user (name_key);

-- A room's password generation: a new one with every change or removal
-- of its password and every ban. Play and replay signs are made for one
-- generation, so a change revokes what was handed out before.
ALTER TABLE mf_live_stream ADD COLUMN password_gen INTEGER NOT NULL DEFAULT 0;
