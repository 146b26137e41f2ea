// The live jobs page: log in, list the caller's jobs, apply every pushed snapshot. No build step, no framework.
"use strict";

const state = { access: null, refresh: null, jobs: new Map(), cursor: null, ws: null, retry: 1000 };
const $ = (id) => document.getElementById(id);

async function api(path, { method = "GET", body, auth = true } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (auth && state.access) headers.Authorization = `Bearer ${state.access}`;
  let resp = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  if (resp.status === 401 && auth && state.refresh && (await refreshTokens())) {
    headers.Authorization = `Bearer ${state.access}`;
    resp = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  }
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) throw Object.assign(new Error(data?.detail || resp.statusText), { problem: data, status: resp.status });
  return data;
}

function saveTokens(pair) {
  state.access = pair.access_token;
  state.refresh = pair.refresh_token;
  // session storage: gone with the tab; the refresh token rotates on every use anyway
  sessionStorage.setItem("reelforge.refresh", pair.refresh_token);
}

async function refreshTokens() {
  try {
    saveTokens(await api("/api/v1/auth/refresh", { method: "POST", body: { refresh_token: state.refresh }, auth: false }));
    return true;
  } catch {
    signedOut();
    return false;
  }
}

function signedOut() {
  state.access = state.refresh = null;
  sessionStorage.removeItem("reelforge.refresh");
  if (state.ws) state.ws.close(1000);
  state.ws = null;
  $("auth").hidden = false; $("jobs").hidden = true; $("logout").hidden = true; $("who").textContent = "";
}

async function signedIn() {
  const me = await api("/api/v1/me");
  $("who").textContent = me.email;
  $("auth").hidden = true; $("jobs").hidden = false; $("logout").hidden = false;
  state.jobs.clear(); state.cursor = null;
  await loadJobs();
  connect();
}

async function loadJobs() {
  const q = new URLSearchParams({ limit: "25" });
  const status = $("status-filter").value;
  if (status) q.set("status", status);
  if (state.cursor) q.set("cursor", state.cursor);
  const page = await api(`/api/v1/jobs?${q}`);
  for (const job of page.items) state.jobs.set(job.id, job);
  state.cursor = page.next_cursor;
  $("more").hidden = !page.next_cursor;
  render();
}

function cell(text, cls) { const td = document.createElement("td"); td.textContent = text ?? ""; if (cls) td.className = cls; return td; }

function render() {
  const rows = [...state.jobs.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  const status = $("status-filter").value;
  const body = $("job-rows");
  body.replaceChildren();
  for (const job of rows) {
    if (status && job.status !== status) continue;
    const tr = document.createElement("tr");
    tr.append(cell(job.kind), cell(job.status, `status-${job.status}`));
    const p = document.createElement("td"); const bar = document.createElement("progress");
    bar.max = 100; bar.value = job.progress; p.append(bar, ` ${Math.round(job.progress)}%`); tr.append(p);
    tr.append(cell(job.stage), cell(job.error ? `${job.error.code}: ${job.error.message}` : "", "error"),
              cell(job.created_at ? new Date(job.created_at).toLocaleString() : ""));
    const actions = document.createElement("td");
    if (["queued", "running"].includes(job.status) && !job.cancel_requested) {
      const b = document.createElement("button"); b.textContent = "Cancel";
      b.onclick = async () => { try { state.jobs.set(job.id, await api(`/api/v1/jobs/${job.id}/cancel`, { method: "POST" })); render(); } catch (e) { alert(e.message); } };
      actions.append(b);
    }
    tr.append(actions);
    body.append(tr);
  }
}

function connect() {
  if (!state.access) return;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/ws?access_token=${encodeURIComponent(state.access)}`);
  state.ws = ws;
  ws.onopen = () => { $("live").textContent = "● live"; $("live").className = "on"; state.retry = 1000; };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type !== "job") return;
    const known = state.jobs.get(msg.job.id);
    state.jobs.set(msg.job.id, { ...known, ...msg.job, cancel_requested: known?.cancel_requested ?? false });
    render();
  };
  ws.onclose = async (e) => {
    $("live").textContent = "○ offline"; $("live").className = "";
    if (state.ws !== ws || !state.refresh) return;
    if (e.code === 4001 || e.code === 4003) { if (!(await refreshTokens())) return; }
    setTimeout(connect, state.retry); state.retry = Math.min(state.retry * 2, 30000);
  };
}

$("auth-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const creds = { email: form.get("email"), password: form.get("password") };
  $("auth-error").textContent = "";
  try {
    if (e.submitter?.dataset.action === "register") await api("/api/v1/auth/register", { method: "POST", body: creds, auth: false });
    saveTokens(await api("/api/v1/auth/login", { method: "POST", body: creds, auth: false }));
    await signedIn();
  } catch (err) { $("auth-error").textContent = `${err.message}${err.problem ? ` (${err.problem.code})` : ""}`; }
});
$("logout").onclick = async () => { try { await api("/api/v1/auth/logout", { method: "POST", body: { refresh_token: state.refresh } }); } finally { signedOut(); } };
$("status-filter").onchange = async () => { state.jobs.clear(); state.cursor = null; await loadJobs(); };
$("more").onclick = loadJobs;

(async () => {
  state.refresh = sessionStorage.getItem("reelforge.refresh");
  if (state.refresh && (await refreshTokens())) await signedIn(); else signedOut();
})();
