-- User names are unique whatever the case of their ASCII letters ("Alice"
-- is "alice"); other letters compare exactly, as on SQLite (0005 there),
-- so that a database moves between the two. LOWER() would fold every
-- letter by MySQL's own tables: name_key folds A-Z only, REPLACE being
-- case-sensitive. Later accounts whose names clash with an older one are
-- renamed "<name>_<id>"; the oldest keeps its name.
ALTER TABLE mf_user ADD COLUMN name_key VARCHAR(64) AS (REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(name, 'A', 'a'), 'B', 'b'), 'C', 'c'), 'D', 'd'), 'E', 'e'), 'F', 'f'), 'G', 'g'), 'H', 'h'), 'I', 'i'), 'J', 'j'), 'K', 'k'), 'L', 'l'), 'M', 'm'), 'N', 'n'), 'O', 'o'), 'P', 'p'), 'Q', 'q'), 'R', 'r'), 'S', 's'), 'T', 't'), 'U', 'u'), 'V', 'v'), 'W', 'w'), 'X', 'x'), 'Y', 'y'), 'Z', 'z')) STORED;
UPDATE mf_user u JOIN mf_user o ON o.name_key = u.name_key AND o.id < u.id
   SET u.name = CONCAT(u.name, '_', u.id);
ALTER TABLE mf_user ADD UNIQUE KEY mf_user_name_key (name_key);

-- A room's password generation: a new one with every change or removal
-- of its password and every ban. Play and replay signs are made for one
-- generation, so a change revokes what was handed out before.
ALTER TABLE mf_live_stream ADD COLUMN password_gen BIGINT NOT NULL DEFAULT 0;
