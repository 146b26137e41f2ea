-- ingest: imports other services ask for with video.import_requested.v1 (ARCHITECTURE §5a).
-- request_id is the requester's id, the correlation id of the answer; one import per request id.

ALTER TABLE imports ADD COLUMN request_id text;
CREATE UNIQUE INDEX imports_request_id ON imports (request_id) WHERE request_id IS NOT NULL;
