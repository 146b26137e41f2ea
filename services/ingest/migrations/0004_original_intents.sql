-- ingest: originals being stored (ingest/originals.py). Committed before the object is written, deleted by the
-- transaction that inserts the video; a row left behind names an object a crash may have left, which the
-- worker's sweep deletes once the row is older than ORIGINALS_ORPHAN_AGE_S.

CREATE TABLE original_intents (
    video_id   uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX original_intents_age ON original_intents (created_at);
