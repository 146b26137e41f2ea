-- ingest: an imported video's creator and platform, as yt-dlp's info dict names them (ingest/fetch.py
-- attribution); carried by video.ingested.v1 so other services credit the source. Empty for the other sources.

ALTER TABLE videos ADD COLUMN uploader text NOT NULL DEFAULT '';
ALTER TABLE videos ADD COLUMN platform text NOT NULL DEFAULT '';
