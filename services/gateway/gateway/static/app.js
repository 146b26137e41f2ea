// The live page: log in, add videos, list the caller's jobs and apply every pushed snapshot, play videos.
// Plain JS, no build step, no framework, no inline code (the page's CSP has script-src 'self').
"use strict";

const API = {
  register: "/api/v1/auth/register",
  login: "/api/v1/auth/login",
  refresh: "/api/v1/auth/refresh",
  logout: "/api/v1/auth/logout",
  me: "/api/v1/me",
  jobs: "/api/v1/jobs",
  ws: "/api/v1/ws",
  videos: "/api/v1/videos",
  imports: "/api/v1/imports",
};
const ACTIVE = ["queued", "running"];

// Pushes may arrive out of order: an ended job never changes again, and otherwise only a newer seq applies.
function isStale(known, incoming) {
  if (!known) return false;
  if (!ACTIVE.includes(known.status)) return true;
  if (!ACTIVE.includes(incoming.status)) return false;
  return known.seq !== undefined && incoming.seq !== undefined && incoming.seq <= known.seq;
}
const REFRESH_KEY = "reelforge.refresh";

const state = {
  access: null, refresh: null, refreshing: null,
  jobs: new Map(), rows: new Map(), cursor: null,
  videos: new Map(), videoCursor: null,
  ws: null, retry: 1000, wasLive: false,
};
const $ = (id) => document.getElementById(id);
const show = (id, on) => { $(id).hidden = !on; };

// --- HTTP ---------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem, fallback) {
    super(problem?.detail || problem?.title || fallback || `HTTP ${status}`);
    this.status = status; this.problem = problem; this.code = problem?.code || "";
  }
}

async function api(path, { method = "GET", body, auth = true } = {}) {
  const send = () => {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && state.access) headers.Authorization = `Bearer ${state.access}`;
    return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  };
  let resp = await send();
  if (resp.status === 401 && auth && state.refresh && (await refreshTokens())) resp = await send();
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, data, resp.statusText);
  return data;
}

function saveTokens(pair) {
  state.access = pair.access_token;
  state.refresh = pair.refresh_token;
  // sessionStorage: gone with the tab; the access token stays in memory only
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
}

// Single flight: refresh tokens rotate, and presenting a spent one revokes the whole session (reuse detection),
// so concurrent 401s (a fetch and the socket closing 4001 at expiry) must share one refresh.
function refreshTokens() {
  if (!state.refreshing) {
    const token = state.refresh;
    state.refreshing = api(API.refresh, { method: "POST", body: { refresh_token: token }, auth: false })
      .then((pair) => { saveTokens(pair); return true; })
      .catch(() => { signedOut(); return false; })
      .finally(() => { state.refreshing = null; });
  }
  return state.refreshing;
}

// --- signing in and out ---------------------------------------------------------------------------------------

function signedOut(message = "") {
  state.access = state.refresh = null;
  sessionStorage.removeItem(REFRESH_KEY);
  const ws = state.ws; state.ws = null;
  if (ws) ws.close(1000);
  closePlayer();
  state.jobs.clear(); state.rows.clear(); $("job-rows").replaceChildren();
  state.videos.clear(); $("video-list").replaceChildren();
  $("auth-form").elements.password.value = "";
  $("auth-error").textContent = message;
  $("who").textContent = "";
  show("app", false); show("logout", false); show("auth", true);
  setLive(false);
}

async function signedIn() {
  const me = await api(API.me);
  $("who").textContent = me.email;
  show("auth", false); show("app", true); show("logout", true);
  state.jobs.clear(); state.cursor = null;
  state.videos.clear(); state.videoCursor = null;
  await Promise.all([loadJobs(), loadVideos()]);
  connect();
}

$("auth-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const creds = { email: form.elements.email.value.trim(), password: form.elements.password.value };
  const register = e.submitter?.dataset.action === "register";
  $("auth-error").textContent = "";
  for (const b of form.querySelectorAll("button")) b.disabled = true;
  try {
    if (register) await api(API.register, { method: "POST", body: creds, auth: false });
    saveTokens(await api(API.login, { method: "POST", body: creds, auth: false }));
    form.elements.password.value = "";
    await signedIn();
  } catch (err) {
    $("auth-error").textContent = describe(err);
  } finally {
    for (const b of form.querySelectorAll("button")) b.disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await api(API.logout, { method: "POST", body: { refresh_token: state.refresh } });
  } catch { /* signed out locally either way */ }
  signedOut();
});

function describe(err) {
  if (err instanceof ApiError) {
    if (err.status === 429) return "Too many attempts; wait a minute and try again.";
    return err.code ? `${err.message} (${err.code})` : err.message;
  }
  return `Network error: ${err.message}`;
}

// --- jobs -----------------------------------------------------------------------------------------------------

async function loadJobs({ reset = false } = {}) {
  if (reset) { state.cursor = null; }
  const q = new URLSearchParams({ limit: "25" });
  const status = $("status-filter").value;
  if (status) q.set("status", status);
  if (state.cursor) q.set("cursor", state.cursor);
  const page = await api(`${API.jobs}?${q}`);
  if (reset) state.jobs.clear();
  for (const job of page.items) state.jobs.set(job.id, job);
  state.cursor = page.next_cursor;
  show("more", Boolean(page.next_cursor));
  renderJobs();
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function newRow() {
  const bar = el("progress", { max: 100, value: 0 });
  const pct = el("span", { className: "pct" });
  const tr = el("tr", {},
    el("td", { className: "kind" }),
    el("td", {}, el("span", { className: "badge" })),
    el("td", { className: "progress" }, bar, pct),
    el("td", { className: "stage" }),
    el("td", { className: "err" }),
    el("td", { className: "when" }),
    el("td", { className: "actions" }));
  return tr;
}

// Update a row in place: rebuilding rows on every snapshot (several a second) would swallow clicks on Cancel.
function updateRow(tr, job) {
  const [kind, status, progress, stage, error, when, actions] = tr.cells;
  const video = state.videos.get(job.result?.video_id || job.params?.video_id);
  kind.replaceChildren(job.kind, ...(video ? [el("small", { textContent: video.title, title: video.title })] : []));
  tr.className = `s-${job.status}`;
  const badge = status.firstChild;
  badge.textContent = job.cancel_requested && ACTIVE.includes(job.status) ? `${job.status} · canceling` : job.status;
  badge.className = `badge s-${job.status}`;
  const pct = Math.max(0, Math.min(100, Number(job.progress) || 0));
  const bar = progress.querySelector("progress");
  bar.value = pct; bar.title = `${pct.toFixed(1)} %`;
  progress.querySelector(".pct").textContent = `${Math.floor(pct)}%`;
  stage.textContent = job.stage || "";
  if (job.error) {
    error.replaceChildren(el("code", { textContent: job.error.code }), " ", job.error.message || "");
    error.title = `${job.error.code}: ${job.error.message}`;
  } else {
    error.replaceChildren(); error.removeAttribute("title");
  }
  when.textContent = fmtTime(job.created_at);
  when.title = job.updated_at ? `updated ${new Date(job.updated_at).toLocaleString()}` : "";
  const cancelable = ACTIVE.includes(job.status) && !job.cancel_requested;
  const button = actions.querySelector("button");
  if (cancelable && !button) {
    actions.append(el("button", { type: "button", className: "small", textContent: "Cancel", onclick: () => cancel(job.id) }));
  } else if (!cancelable && button) {
    button.remove();
  }
}

function renderJobs() {
  const filter = $("status-filter").value;
  const visible = [...state.jobs.values()]
    .filter((j) => !filter || j.status === filter)
    .sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  const body = $("job-rows");
  const keep = new Set(visible.map((j) => j.id));
  for (const [id, tr] of state.rows) if (!keep.has(id)) { tr.remove(); state.rows.delete(id); }
  visible.forEach((job, i) => {
    let tr = state.rows.get(job.id);
    if (!tr) { tr = newRow(); tr.dataset.id = job.id; state.rows.set(job.id, tr); }
    updateRow(tr, job);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null); // move only when out of place
  });
  show("jobs-empty", visible.length === 0);
  $("jobs-empty").textContent = filter
    ? `No ${filter} jobs.`
    : "No jobs yet. Upload or import a video and its jobs show up here, live.";
}

async function cancel(id) {
  try {
    state.jobs.set(id, await api(`${API.jobs}/${id}/cancel`, { method: "POST" }));
  } catch (err) {
    if (err.code !== "job.not_cancelable") alert(describe(err));
    try { state.jobs.set(id, await api(`${API.jobs}/${id}`)); } catch { /* keep what we have */ }
  }
  renderJobs();
}

$("status-filter").addEventListener("change", () => loadJobs({ reset: true }).catch(showJobsError));
$("more").addEventListener("click", () => loadJobs().catch(showJobsError));
function showJobsError(err) { $("jobs-empty").textContent = describe(err); show("jobs-empty", true); }

// --- live updates ---------------------------------------------------------------------------------------------

function setLive(on) {
  $("live").textContent = on ? "live" : "offline";
  $("live").classList.toggle("on", on);
}

function connect() {
  if (!state.access) return;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  // browsers cannot set headers on a WebSocket: the short-lived access token goes in the query string
  const ws = new WebSocket(`${proto}://${location.host}${API.ws}?access_token=${encodeURIComponent(state.access)}`);
  state.ws = ws;
  ws.onopen = () => {
    setLive(true); state.retry = 1000;
    // snapshots sent while we were away are lost: catch up with a fresh first page
    if (state.wasLive) loadJobs({ reset: true }).catch(() => {});
    state.wasLive = true;
  };
  ws.onmessage = (m) => {
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    if (msg.type !== "job" || !msg.job) return;
    const known = state.jobs.get(msg.job.id);
    if (isStale(known, msg.job)) return;
    const job = { ...known, ...msg.job, cancel_requested: msg.job.cancel_requested ?? known?.cancel_requested ?? false };
    state.jobs.set(job.id, job);
    renderJobs();
    // a finished transcode makes a video playable; a finished import adds one
    if (job.status === "succeeded" && known?.status !== "succeeded" && ["import", "transcode"].includes(job.kind)) {
      loadVideos({ reset: true }).catch(() => {});
    }
  };
  ws.onclose = async (e) => {
    if (state.ws !== ws) return; // replaced or signed out
    setLive(false);
    state.ws = null;
    if (!state.refresh) return;
    if (e.code === 4001 || e.code === 4003) { if (!(await refreshTokens())) return; }
    setTimeout(() => { if (!state.ws && state.access) connect(); }, state.retry);
    state.retry = Math.min(state.retry * 2, 30000);
  };
}

// --- adding videos --------------------------------------------------------------------------------------------

function uploadStatus(text, pct) {
  show("upload-status", text !== null);
  show("upload-progress", true);
  $("upload-text").textContent = text || "";
  const bar = $("upload-progress");
  if (pct === null || pct === undefined) bar.removeAttribute("value"); else bar.value = pct;
}

// XMLHttpRequest, not fetch: it reports upload progress.
function sendUpload(form) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", API.videos);
    xhr.setRequestHeader("Authorization", `Bearer ${state.access}`);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = (100 * e.loaded) / e.total;
      if (pct < 100) uploadStatus(`Uploading… ${Math.floor(pct)}%`, pct);
      else uploadStatus("Checking the file…", null);
    };
    xhr.onload = () => (xhr.status < 300 ? resolve(xhr.response) : reject(new ApiError(xhr.status, xhr.response, xhr.statusText)));
    xhr.onerror = () => reject(new Error("upload failed"));
    xhr.send(form);
  });
}

$("upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const file = form.elements.file.files[0];
  if (!file) return;
  const data = new FormData();
  data.append("file", file);
  if (form.elements.title.value.trim()) data.append("title", form.elements.title.value.trim());
  $("add-error").textContent = "";
  form.querySelector("button").disabled = true;
  uploadStatus("Uploading… 0%", 0);
  try {
    let video;
    try {
      video = await sendUpload(data);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401 && (await refreshTokens()))) throw err;
      video = await sendUpload(data);
    }
    form.reset();
    uploadStatus(`✓ Uploaded “${video.title}”; its transcode job shows below.`, null);
    show("upload-progress", false);
    setTimeout(() => uploadStatus(null), 6000);
    await loadVideos({ reset: true });
  } catch (err) {
    uploadStatus(null);
    $("add-error").textContent = describe(err);
  } finally {
    form.querySelector("button").disabled = false;
  }
});

$("import-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  $("add-error").textContent = "";
  form.querySelector("button").disabled = true;
  try {
    const { job_id: jobId } = await api(API.imports, { method: "POST", body: { url: form.elements.url.value.trim() } });
    form.reset();
    // the read model learns of the job from the bus a moment later; show it at once, the socket fills it in
    if (!state.jobs.has(jobId)) {
      state.jobs.set(jobId, { id: jobId, kind: "import", status: "queued", progress: 0, stage: "", error: null,
        created_at: new Date().toISOString(), cancel_requested: false });
      renderJobs();
    }
  } catch (err) {
    $("add-error").textContent = describe(err);
  } finally {
    form.querySelector("button").disabled = false;
  }
});

// --- videos and playback --------------------------------------------------------------------------------------

async function loadVideos({ reset = false } = {}) {
  const q = new URLSearchParams({ limit: "20" });
  if (!reset && state.videoCursor) q.set("cursor", state.videoCursor);
  let page;
  try {
    page = await api(`${API.videos}?${q}`);
    $("videos-error").textContent = "";
  } catch (err) {
    $("videos-error").textContent = `Videos unavailable: ${describe(err)}`;
    return;
  }
  if (reset) state.videos.clear();
  for (const v of page.items) state.videos.set(v.id, v);
  state.videoCursor = page.next_cursor;
  show("more-videos", Boolean(page.next_cursor));
  renderVideos();
  renderJobs(); // job rows name their video when it is known
}

function fmtDuration(s) {
  if (!Number.isFinite(s)) return "";
  const t = Math.round(s), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  return `${h ? `${h}:${String(m).padStart(2, "0")}` : m}:${String(sec).padStart(2, "0")}`;
}

function renderVideos() {
  const items = [...state.videos.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  $("video-list").replaceChildren(...items.map((v) => {
    const facts = [fmtDuration(v.duration_s), v.audio_only ? "audio only" : v.width && `${v.width}×${v.height}`,
      v.source !== "upload" ? v.source : null, fmtTime(v.created_at)].filter(Boolean).join(" · ");
    return el("li", {},
      el("div", { className: "v-main" }, el("strong", { textContent: v.title || "(untitled)" }),
        el("span", { className: "muted", textContent: facts })),
      el("button", { type: "button", className: "small play", textContent: "Play", onclick: () => play(v) }));
  }));
  show("videos-empty", items.length === 0);
}

// Playback URLs are absolute (PUBLIC_BASE_URL); /play is served by this gateway, so use the same-origin path:
// it keeps working when the page is reached under another host name, and fits the CSP.
function sameOrigin(url) {
  if (!url) return "";
  const u = new URL(url, location.href);
  return `${u.pathname}${u.search}`;
}

async function play(video) {
  $("videos-error").textContent = "";
  let pb;
  try {
    pb = await api(`${API.videos}/${video.id}/playback`, { method: "POST", body: {} });
  } catch (err) {
    $("videos-error").textContent = err.code === "stream.not_ready"
      ? `“${video.title}” is not playable yet; its transcode job above says why (still running, failed or canceled).`
      : describe(err);
    return;
  }
  const v = $("video");
  const hls = sameOrigin(pb.hls_url);
  v.poster = sameOrigin(pb.poster_url);
  $("player-title").textContent = video.title || "(untitled)";
  $("player-url").value = new URL(hls, location.href).href;
  show("player", true);
  const native = Boolean(v.canPlayType("application/vnd.apple.mpegurl"));
  v.controls = native;
  if (native) {
    $("player-note").textContent = "";
    show("player-url-label", false);
    v.src = hls;
    v.play().catch(() => {});
  } else {
    v.removeAttribute("src"); v.load();
    $("player-note").textContent = "This browser has no built-in HLS player (Safari and recent Chrome have one). "
      + `Open the stream URL below in a player such as VLC, mpv or ffplay; its token expires ${fmtTime(pb.expires_at)}.`;
    show("player-url-label", true);
  }
  $("player").scrollIntoView({ block: "nearest" });
}

function closePlayer() {
  const v = $("video");
  v.pause(); v.removeAttribute("src"); v.removeAttribute("poster"); v.load();
  show("player", false);
}

$("player-close").addEventListener("click", closePlayer);
$("player-url").addEventListener("focus", (e) => e.target.select());
$("more-videos").addEventListener("click", () => loadVideos());

// --- start ----------------------------------------------------------------------------------------------------

(async () => {
  state.refresh = sessionStorage.getItem(REFRESH_KEY);
  if (!state.refresh) { signedOut(); return; }
  try {
    if (await refreshTokens()) await signedIn();
  } catch (err) {
    signedOut(describe(err));
  }
})();
