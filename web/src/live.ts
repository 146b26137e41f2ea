// Live job updates over the gateway's WebSocket: one socket shared by every page, reconnected with a fresh token.
import { auth, refreshTokens, type S } from "./api/client";

type Job = S["JobView"];
/** A payment credited to the account (the gateway pushes billing's ``credits.topped_up``). */
export type Credited = { order_id: string; amount: number; balance_after: number };
const subscribers = new Set<(job: Job) => void>();
const creditWatchers = new Set<(credited: Credited) => void>();
let socket: WebSocket | null = null;
let retry = 1000;

function connect(): void {
  const s = auth.get();
  if (socket || !s || subscribers.size + creditWatchers.size === 0) return;
  if (!s.access) {
    void refreshTokens(); // after a reload: the new pair's auth.set connects
    return;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws?access_token=${encodeURIComponent(s.access)}`);
  socket = ws;
  ws.onopen = () => (retry = 1000);
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data as string) as { type: string; job?: Job; credits?: Credited };
    if (msg.type === "job" && msg.job) subscribers.forEach((f) => f(msg.job as Job));
    if (msg.type === "credits" && msg.credits) creditWatchers.forEach((f) => f(msg.credits as Credited));
  };
  ws.onclose = async (e) => {
    if (socket !== ws) return; // replaced after a sign-in or a token refresh
    socket = null;
    // 4001/4003: the token expired or was revoked; anything else: the network or a restart
    if (e.code === 4001 || e.code === 4003) await refreshTokens();
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 15_000);
  };
}

auth.subscribe(() => {
  const old = socket;
  socket = null;
  old?.close();
  connect();
});

/** Call ``f`` with every change of the signed-in user's jobs; returns the unsubscribe function. */
export function onJob(f: (job: Job) => void): () => void {
  subscribers.add(f);
  connect();
  return () => void subscribers.delete(f);
}

/** Call ``f`` whenever a payment is credited to the signed-in account; returns the unsubscribe function. */
export function onCredited(f: (credited: Credited) => void): () => void {
  creditWatchers.add(f);
  connect();
  return () => void creditWatchers.delete(f);
}
