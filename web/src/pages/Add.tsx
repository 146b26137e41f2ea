import { useState } from "preact/hooks";
import { api, call, plain, upload, type S } from "../api/client";
import { Action, Form, go, str, useLoad, useReloadOn, View } from "../ui";

function Upload() {
  const [progress, setProgress] = useState<number | null>(null);
  const submit = async (d: FormData, form: HTMLFormElement) => {
    setProgress(0);
    try {
      const video = await upload(d, setProgress);
      form.reset();
      go("video", video.id);
    } finally {
      setProgress(null);
    }
  };
  return (
    <Form submit={submit} label="Upload">
      <h2>Upload a file</h2>
      <input name="file" type="file" accept="video/*,audio/*" required />
      <input name="title" placeholder="Title (optional)" />
      {progress !== null && (
        <p role="status">
          <progress value={progress < 1 ? progress : undefined} max={1} data-testid="upload-progress" />{" "}
          {progress < 1 ? `Uploading… ${Math.floor(progress * 100)} %` : "Checking the file…"}
        </p>
      )}
    </Form>
  );
}

const importUrl = (url: string, title = "") => call(() => api.POST("/api/v1/imports", { body: { url, title } }));

type Sort = "view_count" | "like_count";
function Results({ id }: { id: string }) {
  const [sort, setSort] = useState<Sort>("view_count");
  const search = useLoad(() => call(() => api.GET("/api/v1/searches/{search_id}", { params: { path: { search_id: id } } })), [id]);
  useReloadOn(search, ["search"]);
  const sorted = (r: S["SearchResultView"][]) => [...r].sort((a, b) => (b[sort] ?? 0) - (a[sort] ?? 0));
  return (
    <View of={search}>
      {(s) =>
        s.status !== "succeeded" ? (
          <p class={s.error ? "error" : "muted"} data-testid="search" data-status={s.status}>{s.error ? plain(s.error.code, s.error.message) : `Searching… ${Math.round(s.progress)} %`}</p>
        ) : (
          <>
            <div class="row" data-testid="search" data-status={s.status}>
              <label>Sort by <select value={sort} onChange={(e) => setSort(e.currentTarget.value as Sort)}><option value="view_count">views</option><option value="like_count">likes</option></select></label>
              {s.results.length >= 3 && <a class="button" href={`#/rankings/search/${s.id}/${sort === "view_count" ? "views" : "likes"}`}>Make a ranking short…</a>}
            </div>
            {s.results.length === 0 && <p class="empty">No results.</p>}
            <ul class="results">
              {sorted(s.results).map((r) => (
                <li>
                  <a href={r.url} target="_blank" rel="noreferrer">{r.title}</a> <small class="muted">{r.uploader} · {r.view_count ?? "?"} views · {r.like_count ?? "?"} likes</small>{" "}
                  <Action class="link" run={() => importUrl(r.url, r.title).then(() => go("jobs"))}>Import</Action>
                </li>
              ))}
            </ul>
          </>
        )
      }
    </View>
  );
}

export function Add() {
  const [search, setSearch] = useState<string>();
  const find = async (d: FormData) => {
    const body = { query: str(d, "query"), platform: str(d, "platform") as "youtube" | "tiktok", limit: 20 };
    setSearch((await call(() => api.POST("/api/v1/searches", { body }))).search_id);
  };
  return (
    <section class="columns">
      <Upload />
      <Form submit={(d) => importUrl(str(d, "url"), str(d, "title")).then(() => go("jobs"))} label="Import">
        <h2>Import from a URL</h2>
        <input name="url" type="url" placeholder="https://…" required />
        <input name="title" placeholder="Title (optional)" />
      </Form>
      <div>
        <Form submit={find} label="Search">
          <h2>Search a platform</h2>
          <select name="platform"><option value="youtube">YouTube</option><option value="tiktok">TikTok</option></select>
          <input name="query" placeholder="What to look for" required />
        </Form>
        {search && <Results id={search} />}
      </div>
    </section>
  );
}
