// The typed API client (types generated from openapi.json) plus the session it signs requests with.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type S = components["schemas"];
type Session = { access: string; refresh: string; email: string };

// The refresh token lives in sessionStorage (gone with the tab), the access token only in memory: a reload
// refreshes once (single-flight: refresh tokens rotate with reuse detection, so two racing refreshes would end the
// session).
const KEY = "reelforge.session";
const kept = JSON.parse(sessionStorage.getItem(KEY) ?? "null") as Omit<Session, "access"> | null;
let session: Session | null = kept && { ...kept, access: "" };
const listeners = new Set<() => void>();

export const auth = {
  get: () => session,
  set(next: Session | null) {
    session = next;
    if (next) sessionStorage.setItem(KEY, JSON.stringify({ refresh: next.refresh, email: next.email }));
    else sessionStorage.removeItem(KEY);
    listeners.forEach((f) => f());
  },
  subscribe(f: () => void) {
    listeners.add(f);
    return () => void listeners.delete(f);
  },
};

export const api = createClient<paths>({ baseUrl: location.origin });
api.use({
  onRequest({ request }) {
    if (session && !request.headers.has("Authorization")) request.headers.set("Authorization", `Bearer ${session.access}`);
    return request;
  },
});

/** An API problem (application/problem+json) in plain words. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const PLAIN: Record<string, string> = {
  "auth.invalid_credentials": "That email and password do not match an account.",
  "auth.email_taken": "An account with that email already exists: sign in instead.",
  "credits.insufficient": "Not enough credits: top up on the Credits page.",
  "media.unreadable": "The file is not a video we can read.",
  "upload.too_large": "The file is larger than the upload limit.",
  rate_limited: "Too many requests: wait a few seconds and try again.",
  "source.unavailable": "The video at that address could not be read: it may be private, removed or mistyped.",
  "source.rate_limited": "The video platform is limiting requests: this is tried again later.",
};

/** A job or API error code and message as a sentence for people. */
export const plain = (code: string, message: string) => PLAIN[code] ?? (message || code.replace(/[._]/g, " "));

function problem(status: number, body: unknown): ApiError {
  const p = (body ?? {}) as { code?: string; detail?: string; title?: string };
  const code = p.code ?? String(status);
  return new ApiError(status, code, plain(code, p.detail ?? p.title ?? `request failed (${status})`));
}

let refreshing: Promise<boolean> | null = null;
/** Swap the refresh token for a new pair (once for concurrent callers); sign out when it is refused. */
export function refreshTokens(): Promise<boolean> {
  const s = session;
  if (!s) return Promise.resolve(false);
  refreshing ??= api
    .POST("/api/v1/auth/refresh", { body: { refresh_token: s.refresh } })
    .then(({ data }) => {
      auth.set(data ? { ...s, access: data.access_token, refresh: data.refresh_token } : null);
      return !!data;
    })
    .finally(() => (refreshing = null));
  return refreshing;
}

type Result<T> = { data?: T; error?: unknown; response: Response };
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
/** Run a typed call, refreshing the token once on 401 and waiting out a short 429 (Retry-After ≤ 10 s, twice at
 * most: a busy page, not a runaway script); its data, or an ApiError. */
export async function call<T>(send: () => Promise<Result<T>>): Promise<T> {
  let r = await send();
  if (r.response.status === 401 && (await refreshTokens())) r = await send();
  for (let tries = 0; r.response.status === 429 && tries < 2; tries++) {
    const wait = Number(r.response.headers.get("Retry-After") ?? "NaN");
    if (!(wait >= 0 && wait <= 10)) break;
    await sleep(wait * 1000 + 100);
    r = await send();
  }
  if (!r.response.ok) throw problem(r.response.status, r.error);
  return r.data as T;
}

/** POST a multipart upload with XMLHttpRequest (fetch cannot report upload progress); the file is streamed. */
export function upload(form: FormData, progress: (fraction: number) => void): Promise<S["VideoView"]> {
  const send = () =>
    new Promise<{ status: number; body: unknown }>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/videos");
      if (session) xhr.setRequestHeader("Authorization", `Bearer ${session.access}`);
      xhr.responseType = "json";
      xhr.upload.onprogress = (e) => e.lengthComputable && progress(e.loaded / e.total);
      xhr.onload = () => resolve({ status: xhr.status, body: xhr.response });
      xhr.onerror = () => reject(new ApiError(0, "network", "The connection failed during the upload."));
      xhr.send(form);
    });
  return send().then(async (r) => {
    if (r.status === 401 && (await refreshTokens())) r = await send();
    if (r.status >= 300) throw problem(r.status, r.body);
    return r.body as S["VideoView"];
  });
}

/** GET a file the API describes only loosely (a download, a format), signed in; an ApiError unless 2xx. */
export async function getFile(path: string): Promise<Response> {
  const get = () => fetch(path, { headers: { Authorization: `Bearer ${session?.access ?? ""}` } });
  let r = await get();
  if (r.status === 401 && (await refreshTokens())) r = await get();
  if (!r.ok) throw problem(r.status, await r.json().catch(() => null));
  return r;
}

/** Fetch an authorised file and hand it to the browser as a download. */
export async function download(path: string, filename: string): Promise<void> {
  const r = await getFile(path);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob());
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** A URL the API made absolute (with its PUBLIC_BASE_URL), as a path on this page's origin: the CSP allows only it. */
export function here(url: string): string;
export function here(url: string | null | undefined): string | undefined;
export function here(url: string | null | undefined): string | undefined {
  if (!url) return undefined;
  const u = new URL(url, location.origin);
  return u.pathname + u.search;
}
