-- Replays with their comments (Live.record.comments): a recording's
-- comments are its room's between its start and end times.
CREATE INDEX mf_comment_room_time ON mf_comment (room_id, created_time);
