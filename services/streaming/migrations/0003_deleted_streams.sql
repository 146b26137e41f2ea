-- a deleted video's stream stays as a tombstone: /play and the API answer 404 for it on every replica, and a
-- late video.ingested (or a transcode taken over after the delete) cannot bring it back.
ALTER TABLE streams ADD COLUMN deleted_at timestamptz;
