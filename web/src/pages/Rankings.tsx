import { useEffect, useRef, useState } from "preact/hooks";
import { api, call, plain, type S } from "../api/client";
import { Action, Form, go, LoadMore, str, useJobs, useLoad, usePaged, useReloadOn, View, when } from "../ui";
import { useVideoSearch } from "./Library";

type Item = S["ItemView"];
type Target = S["Target"];
const lines = (d: FormData, k: string) => str(d, k).split(/\s+/).filter(Boolean);

type Picked = { id: string; title: string };

/** The library videos a ranking is made of, found by title (ingest's ``GET /videos?q=``, six a page, "Load more");
 * the order they are ticked in is their rank order, kept across searches. */
function Picker({ picked, pick }: { picked: Picked[]; pick: (next: Picked[]) => void }) {
  const search = useVideoSearch(6);
  const { videos } = search;
  const has = (id: string) => picked.some((p) => p.id === id);
  const toggle = (v: S["VideoView"]) => pick(has(v.id) ? picked.filter((p) => p.id !== v.id) : [...picked, { id: v.id, title: v.title }]);
  return (
    <fieldset class="stack picker">
      <legend>…or pick 3 to 10 of your videos, in rank order (#1 first)</legend>
      {picked.length > 0 && (
        <ol class="picked" data-testid="picked">
          {picked.map((p) => <li>{p.title || "Untitled"} <button type="button" class="link" aria-label={`Unpick ${p.title || "Untitled"}`} onClick={() => pick(picked.filter((x) => x.id !== p.id))}>✕</button></li>)}
        </ol>
      )}
      {/* Enter searches as you type: it must not submit the ranking */}
      <input type="search" placeholder="Search your videos" aria-label="Search your videos" maxLength={200} value={search.text} onInput={(e) => search.setText(e.currentTarget.value)} onKeyDown={(e) => e.key === "Enter" && e.preventDefault()} />
      {search.searching && <p class="muted" role="status" data-testid="picker-searching">Searching…</p>}
      <View of={videos} empty={(v) => v.items.length === 0} emptyText={search.emptyText}>
        {(v) => (
          <>
            <div class="picks">{v.items.map((x) => <label><input type="checkbox" checked={has(x.id)} onChange={() => toggle(x)} /> {x.title || "Untitled"}</label>)}</div>
            <LoadMore of={videos} />
          </>
        )}
      </View>
    </fieldset>
  );
}

function Create({ created }: { created: () => void }) {
  const [picked, setPicked] = useState<Picked[]>([]);
  const submit = async (d: FormData) => {
    const urls = lines(d, "urls");
    const source = urls.length ? { urls } : { video_ids: picked.map((p) => p.id) };
    const p = await call(() => api.POST("/api/v1/rankings", {
      body: {
        title: str(d, "title"),
        n: Number(str(d, "n")),
        order: str(d, "order") as S["PlayOrder"],
        clip_seconds: Number(str(d, "clip")),
        target: str(d, "target") as Target,
        source,
      },
    }));
    created();
    go("rankings", p.id);
  };
  return (
    <Form submit={submit} label="Create ranking">
      <h2>New ranking short</h2>
      <input name="title" placeholder="Title, e.g. Top 5 goals" aria-label="Title" required />
      <div class="row">
        <label>How many <input name="n" type="number" min={3} max={10} value={5} size={3} /></label>
        <label>Seconds a clip <input name="clip" type="number" min={1} max={60} step={0.5} value={8} size={3} /></label>
      </div>
      <div class="row">
        <label>Order <select name="order"><option value="countdown">countdown (N to 1)</option><option value="top_down">top down (1 to N)</option></select></label>
        <label>For <select name="target"><option value="shorts">YouTube Shorts</option><option value="tiktok">TikTok</option><option value="reels">Instagram Reels</option></select></label>
      </div>
      <textarea name="urls" rows={3} placeholder="Video URLs, one a line (to rank a platform search, use Add → Search)" />
      <Picker picked={picked} pick={setPicked} />
    </Form>
  );
}

type OrderBy = S["OrderBy"];
type Hit = S["SearchResultView"];
const RANK_BY: Record<OrderBy, string> = { views: "most views", likes: "most likes", comments: "most comments", manual: "as the platform listed them" };
const COUNT: Partial<Record<OrderBy, "view_count" | "like_count" | "comment_count">> = { views: "view_count", likes: "like_count", comments: "comment_count" };

/** The ``n`` results a ranking by ``by`` takes: render's rule (``ranking.top_hits``): the most of the count first,
 * a missing count last, ties (and "as listed") in the platform's order. */
function topHits(hits: Hit[], n: number, by: OrderBy): Hit[] {
  const key = COUNT[by];
  const ranked = [...hits].sort((a, b) => (key ? (b[key] ?? -1) - (a[key] ?? -1) : 0) || a.position - b.position);
  return ranked.slice(0, n);
}

/** A ranking project of a finished platform search: how many, ranked by what, played in which order. */
function FromSearch({ searchId, by: initial, created }: { searchId: string; by?: string; created: () => void }) {
  const search = useLoad(() => call(() => api.GET("/api/v1/searches/{search_id}", { params: { path: { search_id: searchId } } })), [searchId]);
  useReloadOn(search, ["search"]);
  const [n, setN] = useState(5);
  const [by, setBy] = useState<OrderBy>(initial && initial in RANK_BY ? (initial as OrderBy) : "views");
  const [title, setTitle] = useState<string>(); // the default follows N and the query until the user types one
  const submit = async (d: FormData) => {
    const p = await call(() => api.POST("/api/v1/rankings", {
      body: {
        title: str(d, "title"),
        n,
        order_by: by,
        order: str(d, "order") as S["PlayOrder"],
        clip_seconds: Number(str(d, "clip")),
        target: str(d, "target") as Target,
        source: { search_id: searchId },
      },
    }));
    created();
    go("rankings", p.id);
  };
  return (
    <View of={search}>
      {(s) => {
        if (s.status !== "succeeded") return <p class={s.error ? "error" : "muted"} role="status">{s.error ? plain(s.error.code, s.error.message) : `Searching… ${Math.round(s.progress)} %`}</p>;
        const most = Math.min(10, s.results.length);
        if (most < 3) return <p class="empty">The search found {s.results.length} videos: a ranking short needs 3 at least.</p>;
        const count = Math.min(Math.max(3, n), most);
        const picks = topHits(s.results, count, by);
        return (
          <Form submit={submit} label={`Create the Top ${count}`}>
            <h2>Ranking short of “{s.query}”</h2>
            <input name="title" aria-label="Title" value={title ?? `Top ${count}: ${s.query}`.slice(0, 120)} onInput={(e) => setTitle(e.currentTarget.value)} required />
            <div class="row">
              <label>How many <input name="n" aria-label="How many" type="number" min={3} max={most} value={count} onInput={(e) => setN(Number(e.currentTarget.value))} size={3} /></label>
              <label>Rank by <select name="order_by" aria-label="Rank by" value={by} onChange={(e) => setBy(e.currentTarget.value as OrderBy)}>{Object.entries(RANK_BY).map(([k, v]) => <option value={k}>{v}</option>)}</select></label>
            </div>
            <div class="row">
              <label>Play <select name="order" aria-label="Play order"><option value="countdown">countdown (#{count} first, #1 last)</option><option value="top_down">top down (#1 first)</option></select></label>
              <label>Seconds a clip <input name="clip" type="number" min={1} max={60} step={0.5} value={8} size={3} /></label>
              <label>For <select name="target"><option value="shorts">YouTube Shorts</option><option value="tiktok">TikTok</option><option value="reels">Instagram Reels</option></select></label>
            </div>
            <ol class="search-picks" data-testid="search-picks">
              {picks.map((h) => <li>{h.title}<small>{h.view_count ?? "?"} views · {h.like_count ?? "?"} likes</small></li>)}
            </ol>
          </Form>
        );
      }}
    </View>
  );
}

type Box = S["BoxView"];
/** ``b`` as percentages of the ``layout``'s frame. */
const box = (layout: S["LayoutView"], b: Box) => ({ left: `${(b.x / layout.width) * 100}%`, top: `${(b.y / layout.height) * 100}%`, width: `${(b.w / layout.width) * 100}%`, height: `${(b.h / layout.height) * 100}%` });

/** A scaled mock of one clip's frame: the safe area, the rank badge, the title under it and the attribution, where
 * the render draws them for the project's target (render serves its layout with the project: one source). */
function Preview({ item, rank, target, layout }: { item?: Item; rank: number; target: Target; layout: S["LayoutView"] }) {
  return (
    <figure class="preview" data-testid="layout-preview" data-target={target}>
      <div class="frame" style={{ aspectRatio: `${layout.width} / ${layout.height}` }}>
        <div class="safe" style={box(layout, layout.safe)} title="safe area: the platform's buttons and captions cover the rest" />
        <div class="badge-mock" style={box(layout, layout.badge)}>{rank}</div>
        <div class="title-mock" style={box(layout, layout.title)}>{item?.title || "Title"}</div>
        <div class="attribution-mock" style={box(layout, layout.attribution)}>{[item?.uploader, item?.platform].filter(Boolean).join(" · ") || "attribution"}</div>
      </div>
      <figcaption><small class="muted">Layout for {target}: text stays inside the dashed safe area.</small></figcaption>
    </figure>
  );
}

function Editor({ project, saved }: { project: S["ProjectView"]; saved: () => void }) {
  const [items, setItems] = useState<Item[]>(project.items);
  const [drag, setDrag] = useState<number>();
  const [shown, setShown] = useState(0);
  // a saved change (a new version) replaces the list; any other reload (an import ended: the import rows changed,
  // not the project) takes each item's server state (status, error, source) and keeps the user's unsaved edits
  const version = useRef(project.version);
  useEffect(() => {
    const fresh = version.current !== project.version;
    version.current = project.version;
    const server = new Map(project.items.map((x) => [x.id, x]));
    setItems((mine) => (fresh ? project.items : mine.map((x) => {
      const s = server.get(x.id);
      return s ? { ...s, title: x.title, caption: x.caption, start_s: x.start_s, end_s: x.end_s } : x;
    })));
  }, [project]);
  const move = (from: number, to: number) => {
    if (to < 0 || to >= items.length) return;
    const next = [...items];
    next.splice(to, 0, ...next.splice(from, 1));
    setItems(next);
    setShown(to);
  };
  const edit = (i: number, patch: Partial<Item>) => setItems(items.map((x, j) => (j === i ? { ...x, ...patch } : x)));
  const changed = items.some((x, i) => x.id !== project.items[i]?.id || x.title !== project.items[i].title || x.start_s !== project.items[i].start_s || x.end_s !== project.items[i].end_s);
  const save = () =>
    call(() => api.PATCH("/api/v1/rankings/{project_id}", {
      params: { path: { project_id: project.id } },
      body: { base_version: project.version, items: items.map((x) => ({ id: x.id, title: x.title, caption: x.caption, start_s: x.start_s, end_s: x.end_s })) },
    })).then(saved);
  return (
    <div class="editor">
      <div>
        <ol class="rank-items">
          {items.map((x, i) => (
            <li draggable onDragStart={() => setDrag(i)} onDragOver={(e) => e.preventDefault()} onDrop={() => drag !== undefined && move(drag, i)} onFocusIn={() => setShown(i)} onClick={() => setShown(i)} data-testid="rank-item" aria-current={i === shown ? "true" : undefined}>
              <span class="grip" title="Drag to reorder">⋮⋮</span>
              <b class="rank">#{i + 1}</b>
              <input class="grow" value={x.title} onInput={(e) => edit(i, { title: e.currentTarget.value })} aria-label={`Title of #${i + 1}`} />
              <label>from <input type="number" step="0.1" min={0} aria-label={`Start of #${i + 1}`} value={x.start_s} onInput={(e) => edit(i, { start_s: Number(e.currentTarget.value) })} size={4} /></label>
              <label>to <input type="number" step="0.1" min={0} aria-label={`End of #${i + 1}`} value={x.end_s} onInput={(e) => edit(i, { end_s: Number(e.currentTarget.value) })} size={4} /></label>
              <span class={`badge ${x.status}`}>{x.status}</span>
              {x.error && <small class="error">{plain(x.error.code, x.error.message)}</small>}
              <button class="link" onClick={() => move(i, i - 1)} aria-label={`Move #${i + 1} up`}>↑</button>
              <button class="link" onClick={() => move(i, i + 1)} aria-label={`Move #${i + 1} down`}>↓</button>
            </li>
          ))}
        </ol>
        <p class="row"><Action run={save}>Save changes</Action> {changed && <small class="muted">unsaved changes</small>}</p>
      </div>
      <Preview item={items[shown]} rank={shown + 1} target={project.target} layout={project.layout} />
    </div>
  );
}

type Live = { progress: number; stage: string; status: string; stages: string[] };

function Renders({ project }: { project: S["ProjectView"] }) {
  const path = { params: { path: { project_id: project.id } } };
  const renders = useLoad(() => call(() => api.GET("/api/v1/rankings/{project_id}/renders", path)), [project.id]);
  useReloadOn(renders, ["render"]);
  // the render's job, live over the WebSocket: its percent and every stage it went through
  const [live, setLive] = useState<Record<string, Live>>({});
  useJobs((job) => {
    if (job.kind !== "render") return;
    setLive((all) => {
      const was = all[job.id];
      const stages = was?.stages ?? [];
      return { ...all, [job.id]: { progress: job.progress / 100, stage: job.stage, status: job.status, stages: job.stage && !stages.includes(job.stage) ? [...stages, job.stage] : stages } };
    });
  });
  const render = () => call(() => api.POST("/api/v1/rankings/{project_id}/renders", path)).then(renders.reload);
  const waiting = project.items.some((x) => x.status !== "ready");
  return (
    <>
      <h2>Renders</h2>
      <p class="row">
        <Action run={render}>Render</Action>
        <small class="muted">{waiting ? "Some clips are still importing: the render waits for them." : `About ${Math.round(project.estimated_seconds)} s of video, paid in credits.`}</small>
      </p>
      <View of={renders} empty={(r) => r.items.length === 0} emptyText="Not rendered yet.">
        {(r) => (
          <ul class="stack renders">
            {r.items.map((x) => {
              const l = live[x.id];
              const running = !["succeeded", "failed", "canceled"].includes(x.status);
              const progress = running && l ? l.progress : x.progress / 100; // the API counts 0–100
              const stage = running && l ? l.stage : x.stage;
              return (
                <li data-testid="render" data-status={x.status} data-stages={(l?.stages ?? []).join(",")}>
                  <div class="row">
                    <span class={`badge ${x.status}`}>{x.status}</span>
                    <progress value={progress} max={1} aria-label="Render progress" /> <span data-testid="render-stage">{stage}</span> {running && <span>{Math.round(progress * 100)} %</span>}
                    <small>{when(x.created_at)} · {x.credits} credits</small>
                  </div>
                  {l && l.stages.length > 0 && <ol class="stages">{l.stages.map((s) => <li aria-current={s === stage ? "step" : undefined}>{s}</li>)}</ol>}
                  {x.error && <p class="error">{plain(x.error.code, x.error.message)}</p>}
                  {x.download_url && (
                    <div class="stack">
                      <video controls playsInline preload="metadata" src={x.download_url} class="short" data-testid="render-video" />
                      <a href={x.download_url} download={`${project.title}.mp4`} data-testid="render-download">Download MP4</a>
                    </div>
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </View>
    </>
  );
}

function Project({ id }: { id: string }) {
  const project = useLoad(() => call(() => api.GET("/api/v1/rankings/{project_id}", { params: { path: { project_id: id } } })), [id]);
  useReloadOn(project, ["import"]);
  return (
    <View of={project}>
      {(p) => (
        <section>
          <p><a href="#/rankings">← Ranking shorts</a></p>
          <h1>{p.title}</h1>
          <p class="muted">{p.n} clips · {p.order === "countdown" ? "countdown" : "top down"} · {p.target} · about {Math.round(p.estimated_seconds)} s </p>
          {p.warnings.map((w) => <p class="error" role="alert" data-testid="project-warning">{plain(w.code, w.message)}</p>)}
          <Editor project={p} saved={project.reload} />
          <Renders project={p} />
        </section>
      )}
    </View>
  );
}

const rankingsPage = (query: { limit: number }, cursor?: string) => call(() => api.GET("/api/v1/rankings", { params: { query: { ...query, cursor } } }));

export function Rankings({ id, rest = [] }: { id: string; rest?: string[] }) {
  const list = usePaged({ limit: 50 }, rankingsPage);
  // a render (here or in another tab) changes its project: the list follows, newest change first
  useReloadOn(list, ["render"]);
  const fromSearch = id === "search" && rest[0];
  if (id && !fromSearch) return <Project id={id} />;
  return (
    <section class="columns">
      <div>
        <h1>Ranking shorts</h1>
        <View of={list} empty={(l) => l.items.length === 0} emptyText="No rankings yet.">
          {(l) => (
            <>
              <ul>{l.items.map((p) => <li><a href={`#/rankings/${p.id}`}>{p.title}</a> <small class="muted">{p.n} · {p.target} · {when(p.updated_at)}</small></li>)}</ul>
              <LoadMore of={list} />
            </>
          )}
        </View>
      </div>
      {fromSearch ? <FromSearch searchId={fromSearch} by={rest[1]} created={list.reload} /> : <Create created={list.reload} />}
    </section>
  );
}
