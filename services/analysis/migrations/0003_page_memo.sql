-- The page memo: a URL analysed before (same engine, model, prompt version and options) → the content cache key
-- its page's transcript gave, and where that transcript is kept. A rerun of the URL within PAGE_MEMO_TTL_S of the
-- page's last read returns the cached result without reading the page again (docs/analysis.md, "The caches").
CREATE TABLE page_memo (
    memo_key       text PRIMARY KEY,
    cache_key      text NOT NULL,
    source_id      text NOT NULL,
    source         text NOT NULL,
    language       text NOT NULL,
    title          text NOT NULL DEFAULT '',
    duration_s     double precision,
    transcript_key text NOT NULL,
    read_at        timestamptz NOT NULL DEFAULT now()
);
