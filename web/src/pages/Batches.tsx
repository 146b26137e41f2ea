import { useEffect, useState } from "preact/hooks";
import { api, call, download, plain, type S } from "../api/client";
import { Action, Form, go, LoadMore, str, useLiveReload, useLoad, usePaged, View, when } from "../ui";

type Batch = S["BatchView"];
/** The job kinds whose changes move a batch: its own progress job and its paid chunks. */
export const BATCH_KINDS = ["analysis_batch", "analysis_chunk"];
const ACTIONS = ["pause", "resume", "cancel", "retry-failed"] as const;
const LABELS = { pause: "Pause", resume: "Resume", cancel: "Cancel", "retry-failed": "Retry failed" };
const CONFIRM: Partial<Record<(typeof ACTIONS)[number], string>> = { cancel: "Cancel this batch? Items not analysed yet are skipped." };

function Controls({ b, changed }: { b: Batch; changed: () => void }) {
  const act = (what: (typeof ACTIONS)[number]) =>
    call(() => api.POST(`/api/v1/analyses/batches/{batch_id}/${what}`, { params: { path: { batch_id: b.id } } })).then(changed);
  // the server's transitions: pause a running batch, resume a paused one, cancel either, retry failures unless canceled
  const allowed = {
    pause: b.state === "running",
    resume: b.state === "paused",
    cancel: b.state === "running" || b.state === "paused",
    "retry-failed": b.state !== "canceled" && (b.counts.failed ?? 0) > 0,
  };
  return (
    <span class="row">
      {ACTIONS.filter((a) => allowed[a]).map((a) => <Action class="link" run={() => act(a)} confirm={CONFIRM[a]}>{LABELS[a]}</Action>)}
      <Action class="link" run={() => download(`/api/v1/analyses/batches/${b.id}/export?format=jsonl`, `batch-${b.id}.jsonl`)}>Export</Action>
    </span>
  );
}

/** A time left as people say it (analysis' own ``time_left`` words). */
function timeLeft(s: number): string {
  if (s < 60) return "under a minute left";
  const m = Math.round(s / 60);
  return m < 60 ? `about ${m} min left` : `about ${Math.floor(m / 60)} h ${m % 60} min left`;
}

/** Where a batch stands in one sentence: items ended, the pace and the time left, and the model quota's state. */
function pace(b: Batch, ended: number): string {
  const parts = [`${ended} of ${b.total} items done`];
  if (b.state === "paused") parts.push("paused: nothing runs until you resume");
  else if (b.state === "running") {
    const rate = b.throughput_per_min > 0 ? ` at ${b.throughput_per_min.toFixed(1)} items a minute` : "";
    parts.push(b.eta_s == null ? "time left: known once the first item ends" : `${timeLeft(b.eta_s)}${rate}`);
  }
  parts.push(b.quota.state === "ok" ? "AI quota available" : `AI quota used up: items wait${b.quota.until ? ` until ${when(b.quota.until)}` : ""}${b.quota.message ? ` (${b.quota.message})` : ""}`);
  return parts.join(" · ");
}

/** The batch's failed items, each with why in plain words (the first few: the export has them all). */
function Failures({ b }: { b: Batch }) {
  const failed = b.counts.failed ?? 0;
  const shown = 5;
  const items = useLoad(() => call(() => api.GET("/api/v1/analyses/batches/{batch_id}/items", { params: { path: { batch_id: b.id }, query: { state: "failed", limit: shown } } })), [b.id, failed]);
  return (
    <View of={items}>
      {(page) => (
        <div data-testid="batch-failures">
          <p class="error">{failed === 1 ? "1 item failed:" : `${failed} items failed:`}</p>
          <ul>
            {page.items.map((a) => (
              <li data-testid="batch-failure"><code>{a.url || a.video_id}</code>: {a.error ? plain(a.error.code, a.error.message ?? "") : "failed"}</li>
            ))}
          </ul>
          {failed > page.items.length && <small class="muted">and {failed - page.items.length} more: export the batch for all of them.</small>}
        </div>
      )}
    </View>
  );
}

function BatchCard({ b, changed }: { b: Batch; changed: () => void }) {
  const done = Object.entries(b.counts).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${String(v)}`).join(" · ");
  const ended = Object.entries(b.counts).filter(([k]) => !["queued", "running"].includes(k)).reduce((n, [, v]) => n + v, 0);
  return (
    <li class="stack" data-testid="batch" data-state={b.state} data-id={b.id}>
      <span>
        <span class={`badge ${b.state}`}>{b.state}</span> <progress value={ended} max={b.total || 1} /> {ended}/{b.total} items ·{" "}
        <span data-testid="batch-counts">{done}</span> · <small>{when(b.created_at)}</small>
      </span>
      <span data-testid="batch-pace" class={b.quota.state === "ok" ? "muted" : "error"}>{pace(b, ended)}</span>
      {(b.counts.failed ?? 0) > 0 && <Failures b={b} />}
      <Controls b={b} changed={changed} />
    </li>
  );
}

const batchesPage = (query: { limit: number }, cursor?: string) => call(() => api.GET("/api/v1/analyses/batches", { params: { query: { ...query, cursor } } }));

/** The caller's batches, newest first, 20 a page with "Load more"; loaded again when ``made`` counts a new one. */
function List({ made }: { made: number }) {
  const list = usePaged({ limit: 20 }, batchesPage);
  useLiveReload(list, BATCH_KINDS);
  useEffect(() => void (made && list.reload()), [made]);
  return (
    <View of={list} empty={(l) => l.items.length === 0} emptyText="No batches yet.">
      {(l) => (
        <>
          <ul class="stack">{l.items.map((b) => <BatchCard b={b} changed={list.reload} />)}</ul>
          <LoadMore of={list} />
        </>
      )}
    </View>
  );
}

/** One batch (``#/batches/<id>``), asked for by id: it need not be among the newest. */
function One({ id }: { id: string }) {
  const batch = useLoad(() => call(() => api.GET("/api/v1/analyses/batches/{batch_id}", { params: { path: { batch_id: id } } })), [id]);
  useLiveReload(batch, BATCH_KINDS);
  return (
    <>
      <p><a href="#/batches">← Every batch</a></p>
      <View of={batch}>{(b) => <ul class="stack"><BatchCard b={b} changed={batch.reload} /></ul>}</View>
    </>
  );
}

export function Batches({ id }: { id: string }) {
  const [made, setMade] = useState(0);
  // pasted text is sent as a CSV, so the server's rules apply to both: the first column of each row (a URL or a
  // video id), a header row skipped
  const paste = async (d: FormData, f: HTMLFormElement) => {
    const file = d.get("file");
    const csv = file instanceof File && file.size > 0 ? file : new Blob([str(d, "urls")], { type: "text/csv" });
    const form = new FormData();
    form.append("file", csv, "batch.csv");
    await call(() => api.POST("/api/v1/analyses/batches/csv", { body: {} as never, bodySerializer: () => form }));
    f.reset();
    setMade((n) => n + 1);
    go("batches");
  };
  return (
    <section class="columns">
      <div>
        <h1>Batches</h1>
        {id ? <One id={id} /> : <List made={made} />}
      </div>
      <Form submit={paste} label="Analyse all">
        <h2>New batch</h2>
        <textarea name="urls" rows={6} placeholder="Video URLs or ids, one a line (a CSV: its first column; a header row is skipped)" />
        <label>or a CSV file <input type="file" name="file" accept=".csv,text/csv" /></label>
      </Form>
    </section>
  );
}
