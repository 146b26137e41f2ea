import { useEffect, useRef, useState } from "preact/hooks";
import { api, call, here, plain, type S } from "../api/client";
import { Action, go, LoadMore, PageSize, StreamBadge, useCoalesced, useJobs, useLoad, usePageSize, usePaged, useReloadOn, View, type Loaded } from "../ui";

type Stream = { status: string; poster?: string; error?: string };

/** The stream state of each of ``ids`` (one loaded page of cards) in ONE request (streaming's ``GET /streams``):
 * its status, a failure's reason in plain words, and once it plays a signed poster URL. A listed video without a
 * stream yet (``not_found``: its transcode is not queued yet) is processing. */
async function streamsOf(ids: string[]): Promise<Map<string, Stream>> {
  const query = { video_ids: ids.join(",") };
  const r = await call(() => api.GET("/api/v1/streams", { params: { query } }));
  return new Map(r.items.map((s) => [s.video_id, {
    status: s.status === "not_found" ? "processing" : s.status,
    poster: here(s.poster_url),
    error: s.error ? plain(s.error.code, s.error.message) : undefined,
  }]));
}

/** Reload ``streams`` when a transcode of one of ``ids`` changes status or stage (it became playable, ready or
 * failed), not on every progress tick; at most once every ``RELOAD_MS``. */
function useReloadOnTranscode(streams: Loaded<unknown>, ids: string[]): void {
  const reload = useCoalesced(streams.reload, RELOAD_MS);
  const seen = useRef(new Map<string, string>());
  useJobs((job) => {
    if (job.kind !== "transcode" || (job.subject && !ids.includes(job.subject.id))) return;
    const mark = `${job.status} ${job.stage}`;
    if (seen.current.get(job.id) === mark) return;
    seen.current.set(job.id, mark);
    reload();
  });
}

function Card({ video, stream, changed }: { video: S["VideoView"]; stream?: Stream; changed: () => void }) {
  const params = { params: { path: { video_id: video.id } } };
  const remove = () => call(() => api.DELETE("/api/v1/videos/{video_id}", params)).then(changed);
  const rename = async () => {
    const title = window.prompt("New title", video.title)?.trim();
    if (title && title !== video.title) await call(() => api.PATCH("/api/v1/videos/{video_id}", { ...params, body: { title } })).then(changed);
  };

  return (
    <li class="card" data-testid="video-card">
      <a href={`#/video/${video.id}`} class="poster">
        {stream?.poster ? <img src={stream.poster} alt="" loading="lazy" /> : <span>{video.audio_only ? "♪" : "▶"}</span>}
      </a>
      <div class="card-body">
        <a href={`#/video/${video.id}`} class="title">{video.title || "Untitled"}</a>
        <StreamBadge status={stream?.status} error={stream?.error} />
        <Action class="link" run={rename}>Rename</Action>
        <Action class="link danger" run={remove} confirm={`Delete “${video.title}”? This cannot be undone.`}>Delete</Action>
      </div>
    </li>
  );
}

/** One loaded page of cards: their streams asked in one request, asked again when one of their transcodes moves
 * (a 48-card page is 1 request, not 97: the gateway allows 100 a minute). */
function Cards({ videos, changed }: { videos: S["VideoView"][]; changed: () => void }) {
  const ids = videos.map((v) => v.id);
  const streams = useLoad(() => streamsOf(ids), [ids.join(",")]);
  useReloadOnTranscode(streams, ids);
  // while the first answer is on its way: "…"; when it failed (and nothing was shown before): "Status unavailable"
  const unknown: Stream | undefined = streams.error && !streams.data ? { status: "unknown" } : undefined;
  return <>{videos.map((v) => <Card key={v.id} video={v} stream={streams.data?.get(v.id) ?? unknown} changed={changed} />)}</>;
}

/** ``items`` cut into the pages they were loaded as. */
const pagesOf = <T,>(items: T[], size: number): T[][] => Array.from({ length: Math.ceil(items.length / size) }, (_, k) => items.slice(k * size, (k + 1) * size));

/** A burst of job changes (eight uploads' transcodes, a batch of imports) reloads the grid once every 2 s at most:
 * a reload asks for every page shown again, and the gateway allows 100 requests a minute. */
const RELOAD_MS = 2000;

type Search = { q: string; limit: number };
const videoPage = ({ q, limit }: Search, cursor?: string) => call(() => api.GET("/api/v1/videos", { params: { query: { q: q || undefined, limit, cursor } } }));

/** ``value``, once it has stayed the same for ``ms``. */
function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}

/** The caller's videos whose title contains the typed text (ingest's ``GET /videos?q=``, 300 ms after the last
 * keystroke), ``limit`` a page, with "Load more" (``LoadMore of={videos}``); a new video appears live. The Library and the
 * Ranking page's picker share it. */
export function useVideoSearch(limit: number) {
  const [text, setText] = useState("");
  const q = useDebounced(text.trim(), 300);
  const videos = usePaged({ q, limit }, videoPage);
  // a new video (an upload here or in another tab starts its transcode; an import; a render) appears live
  useReloadOn(videos, ["transcode", "import", "render"], undefined, RELOAD_MS);
  const d = videos.data;
  const searching = text.trim() !== q || (videos.loading && d?.key !== JSON.stringify({ q, limit }));
  const emptyText = d?.args.q ? `No video matches “${d.args.q}”.` : "No videos yet: add one.";
  return { text, setText, videos, searching, emptyText };
}

export function Library() {
  const size = usePageSize("library");
  const search = useVideoSearch(size[0]);
  const { videos } = search;
  return (
    <section>
      <div class="bar">
        <h1>Library</h1>
        <input type="search" placeholder="Search titles" aria-label="Search titles" maxLength={200} value={search.text} onInput={(e) => search.setText(e.currentTarget.value)} />
        <PageSize size={size} label="Videos per page" />
        <button onClick={() => go("add")}>Add video</button>
      </div>
      {search.searching && <p class="muted" role="status" data-testid="library-searching">Searching…</p>}
      <View of={videos} empty={(d) => d.items.length === 0} emptyText={search.emptyText}>
        {(d) => (
          <>
            <ul class="grid">{pagesOf(d.items, d.args.limit).map((page, k) => <Cards key={k} videos={page} changed={videos.reload} />)}</ul>
            <LoadMore of={videos} />
          </>
        )}
      </View>
    </section>
  );
}
