-- render: a video's creator and platform, from video.ingested.v1 (ingest reads them from the source when it
-- imports): an item credits its clip with what ingest found, over what render guessed from a URL.

ALTER TABLE videos ADD COLUMN uploader text NOT NULL DEFAULT '';
ALTER TABLE videos ADD COLUMN platform text NOT NULL DEFAULT '';
