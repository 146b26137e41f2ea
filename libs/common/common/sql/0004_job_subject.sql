-- What a job works on, so a list of running jobs names the user's video: {"kind": "video", "id": ..., "title": ...}.
-- Null for jobs made before (and for kinds without one subject).
ALTER TABLE jobs ADD COLUMN subject jsonb;
