-- Admins can ban a room from publishing.
ALTER TABLE mf_live_stream ADD COLUMN is_banned TINYINT(1) NOT NULL DEFAULT 0;
