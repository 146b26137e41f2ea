-- A video's page asks for that video's latest analysis (GET /analyses?video_id=): the owner's single analyses by
-- video, newest first, without reading every analysis the owner has.
CREATE INDEX analyses_owner_video ON analyses (owner_id, video_id, created_at DESC, id DESC) WHERE batch_id IS NULL;
