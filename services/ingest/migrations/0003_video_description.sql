-- ingest: a video's description (a rendered short's attribution of its sources; empty for the others).

ALTER TABLE videos ADD COLUMN description text NOT NULL DEFAULT '';
