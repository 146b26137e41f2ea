// What every page shares: loading/empty/error states, live reloads, hash routes, small widgets.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { S } from "./api/client";
import { onJob } from "./live";

export type Loaded<T> = { data?: T; error?: Error; loading: boolean; reload: () => void };

/** Load ``fn`` now and whenever ``deps`` change; ``reload`` loads again keeping the data shown meanwhile. */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const latest = useRef(0);
  const reload = useCallback(() => {
    const n = ++latest.current;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => n === latest.current && setState({ data, loading: false }),
      (error: Error) => n === latest.current && setState((s) => ({ ...s, error, loading: false })),
    );
  }, deps); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(reload, [reload]);
  return { ...state, reload };
}

/** Run ``f`` on every live job change (kept current without resubscribing). */
export function useJobs(f: (job: S["JobView"]) => void): void {
  const ref = useRef(f);
  ref.current = f;
  useEffect(() => onJob((job) => ref.current(job)), []);
}

/** Reload ``loaded`` when a job of one of ``kinds`` changes state (not on every progress tick); with ``every``, at
 * most one reload every ``every`` ms (``useCoalesced``: a burst of changes costs one reload, not one each). */
export function useReloadOn(loaded: Loaded<unknown>, kinds: string[], subject?: string, every = 0): void {
  const coalesced = useCoalesced(loaded.reload, every);
  const seen = useRef(new Map<string, string>());
  useJobs((job) => {
    // jobs that name their subject are matched on it; a job without one might be ours
    if (!kinds.includes(job.kind) || (subject && job.subject && job.subject.id !== subject)) return;
    if (seen.current.get(job.id) === job.status) return;
    seen.current.set(job.id, job.status);
    if (every) coalesced();
    else loaded.reload();
  });
}

/** ``f``, called at most once every ``ms``: calls meanwhile are coalesced into one at the end of the wait (the last
 * call is always followed by one), the first after a quiet spell runs at once. */
export function useCoalesced(f: () => void, ms: number): () => void {
  const ref = useRef(f);
  ref.current = f;
  const last = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout>>();
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      last.current = Date.now();
      ref.current();
    }, Math.max(0, last.current + ms - Date.now()));
  }, [ms]);
}

/** Reload ``loaded`` on every change of a job of one of ``kinds``, progress-only updates included (a batch's counts
 * move without its job changing state); at most one reload a second, the last change always followed by one. */
export function useLiveReload(loaded: Loaded<unknown>, kinds: string[]): void {
  const reload = useCoalesced(loaded.reload, 1000);
  useJobs((job) => kinds.includes(job.kind) && reload());
}

/** A cursor listing's first ``pages`` pages, as loaded for ``args`` (``key``: its JSON), and the next cursor. */
export type Listing<T, A> = { key: string; args: A; items: T[]; pages: number; next: string | null };
type PageOf<T> = { items: T[]; next_cursor?: string | null };
export type Paged<T, A> = Loaded<Listing<T, A>> & { loadMore?: { busy: boolean; go: () => void } };

/** The first ``pages`` pages of ``fetch(args)`` through the API's cursor; ``shown``, when it is this listing one page
 * short, is continued from its cursor instead of being fetched again. */
async function listing<T, A>(args: A, fetch: (args: A, cursor?: string) => Promise<PageOf<T>>, pages: number, shown?: Listing<T, A>): Promise<Listing<T, A>> {
  const key = JSON.stringify(args);
  let l: Listing<T, A> = shown && shown.key === key && shown.pages === pages - 1 && shown.next ? shown : { key, args, items: [], pages: 0, next: null };
  while (l.pages < pages && (l.pages === 0 || l.next)) {
    const page = await fetch(args, l.next ?? undefined);
    l = { key, args, items: [...l.items, ...page.items], pages: l.pages + 1, next: page.next_cursor ?? null };
  }
  return l;
}

/** A list the API pages with a cursor: its first page for ``args`` (JSON-comparable: other args start again from
 * their first page), more with ``loadMore`` (the ``LoadMore`` button); ``reload`` loads every page shown again. */
export function usePaged<T, A>(args: A, fetch: (args: A, cursor?: string) => Promise<PageOf<T>>): Paged<T, A> {
  const key = JSON.stringify(args);
  const [more, setMore] = useState({ key: "", pages: 1 });
  const pages = more.key === key ? more.pages : 1;
  const shown = useRef<Listing<T, A>>();
  const list = useLoad(() => listing(args, fetch, pages, shown.current), [key, pages]);
  shown.current = list.data;
  const d = list.data;
  const loadMore = d?.next ? { busy: list.loading || d.key !== key, go: () => setMore({ key: d.key, pages: d.pages + 1 }) } : undefined;
  return { ...list, loadMore };
}

/** The next page of a ``usePaged`` list, when there is one. */
export function LoadMore({ of }: { of: { loadMore?: { busy: boolean; go: () => void } } }) {
  const more = of.loadMore;
  return more ? <button type="button" class="link" disabled={more.busy} onClick={more.go}>Load more</button> : null;
}

/** Page sizes a person can pick (the API allows up to 100). */
const SIZES = [6, 12, 24, 48, 96];
/** A page size picked from ``SIZES``, remembered in this browser under ``name`` (48 until one is picked). */
export function usePageSize(name: string): [number, (n: number) => void] {
  const key = `reelforge.${name}.perPage`;
  const [size, setSize] = useState(() => {
    const n = Number(localStorage.getItem(key));
    return SIZES.includes(n) ? n : 48;
  });
  const pick = (n: number) => {
    localStorage.setItem(key, String(n));
    setSize(n);
  };
  return [size, pick];
}

/** The select of a ``usePageSize``; ``label`` names what is paged ("Videos per page"). */
export function PageSize({ size, label }: { size: [number, (n: number) => void]; label: string }) {
  return (
    <select aria-label={label} value={size[0]} onChange={(e) => size[1](Number(e.currentTarget.value))}>
      {SIZES.map((n) => <option value={n}>{n} per page</option>)}
    </select>
  );
}

type ViewProps<T> = { of: Loaded<T>; empty?: (d: T) => boolean; emptyText?: ComponentChildren; children: (d: T) => ComponentChildren };
/** The three states of a loaded thing, then ``children`` with its data. */
export function View<T>({ of, empty, emptyText = "Nothing here yet.", children }: ViewProps<T>) {
  if (of.data === undefined) {
    if (of.error) return <ErrorBox error={of.error} retry={of.reload} />;
    return <p class="muted" role="status">Loading…</p>;
  }
  return (
    <>
      {of.error && <ErrorBox error={of.error} retry={of.reload} />}
      {empty?.(of.data) ? <p class="empty">{emptyText}</p> : children(of.data)}
    </>
  );
}

export function ErrorBox({ error, retry }: { error: Error | string; retry?: () => void }) {
  return (
    <p class="error" role="alert">
      {typeof error === "string" ? error : error.message}
      {retry && <button class="link" onClick={retry}>Try again</button>}
    </p>
  );
}

/** A button running an async action, disabled while it runs, showing its error beside it. */
export function Action(props: { run: () => Promise<unknown>; children: ComponentChildren; class?: string; confirm?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const click = async () => {
    if (props.confirm && !window.confirm(props.confirm)) return;
    setBusy(true);
    setError(undefined);
    try {
      await props.run();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button class={props.class} disabled={busy} onClick={click}>{props.children}</button>
      {error && <ErrorBox error={error} />}
    </>
  );
}

/** A form whose submit runs an async action; its fields are read from the FormData. */
export function Form(props: { submit: (data: FormData, form: HTMLFormElement) => Promise<unknown>; children: ComponentChildren; label: string; class?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const onSubmit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    setBusy(true);
    setError(undefined);
    try {
      await props.submit(new FormData(form), form);
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class={props.class ?? "stack"} onSubmit={onSubmit}>
      {props.children}
      <button type="submit" disabled={busy}>{props.label}</button>
      {error && <ErrorBox error={error} />}
    </form>
  );
}

export function Tabs<K extends string>(props: { tabs: Record<K, string>; current: K; pick: (k: K) => void }) {
  return (
    <div class="tabs" role="tablist">
      {(Object.keys(props.tabs) as K[]).map((k) => (
        <button role="tab" aria-selected={k === props.current} onClick={() => props.pick(k)}>{props.tabs[k]}</button>
      ))}
    </div>
  );
}

export function useRoute(): string[] {
  const parse = () => location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const f = () => setRoute(parse());
    addEventListener("hashchange", f);
    return () => removeEventListener("hashchange", f);
  }, []);
  return route;
}

export const go = (...parts: string[]) => (location.hash = "#/" + parts.map(encodeURIComponent).join("/"));
export const when = (iso?: string | null) => (iso ? new Date(iso).toLocaleString() : "—");
export const clock = (s: number) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
export const str = (d: FormData, k: string) => String(d.get(k) ?? "").trim();

const STREAM_WORDS: Record<string, [label: string, hint: string]> = {
  processing: ["Processing", "Being prepared for streaming: it plays soon."],
  playable: ["Playable", "Plays now; more qualities are still being made."],
  ready: ["Ready", "Plays in every quality."],
  error: ["Failed", "It could not be prepared for streaming."],
  unknown: ["Status unavailable", "Its status could not be read just now."],
};

/** A stream's status as a person reads it (a word, a hover hint; for a failure its reason, already in plain
 * words); the server's status word stays in ``data-status``. Undefined while it loads: "…". */
export function StreamBadge({ status, error }: { status?: string; error?: string }) {
  const [label, hint] = status ? STREAM_WORDS[status] ?? [status, ""] : ["…", ""];
  const text = status === "error" ? `${label}: ${error ?? "the reason is unknown"}` : label;
  return <span class={`badge ${status ?? ""}`} data-status={status} title={hint}>{text}</span>;
}
