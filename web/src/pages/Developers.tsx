import { useEffect, useState } from "preact/hooks";
import { api, call } from "../api/client";
import { Action, Form, str, useLoad, View, when } from "../ui";

function Keys() {
  const keys = useLoad(() => call(() => api.GET("/api/v1/auth/keys")), []);
  const [secret, setSecret] = useState<string>();
  const create = async (d: FormData) => {
    const k = await call(() => api.POST("/api/v1/auth/keys", { body: { name: str(d, "name"), scope: str(d, "scope") as "full" | "read" } }));
    setSecret(k.key);
    keys.reload();
  };
  const revoke = (id: string) => call(() => api.DELETE("/api/v1/auth/keys/{id}", { params: { path: { id } } })).then(keys.reload);
  return (
    <div>
      <h2>API keys</h2>
      <Form submit={create} label="Create key" class="row">
        <input name="name" placeholder="Name, e.g. laptop CLI" required />
        <select name="scope" aria-label="Scope"><option value="read">read-only</option><option value="full">full</option></select>
      </Form>
      {secret && <p role="status">Copy this key now, it is not shown again: <code data-testid="new-key">{secret}</code></p>}
      <View of={keys} empty={(d) => d.items.length === 0} emptyText="No API keys.">
        {(d) => (
          <table>
            <thead><tr><th>Name</th><th>Prefix</th><th>Scope</th><th>Created</th><th>Last used</th><th /></tr></thead>
            <tbody>{d.items.map((k) => <tr data-testid="key"><td>{k.name}</td><td><code>{k.prefix}</code></td><td>{k.scope}</td><td><small>{when(k.created_at)}</small></td><td><small>{when(k.last_used_at)}</small></td><td><Action class="link danger" run={() => revoke(k.id)} confirm="Revoke this key? Scripts using it stop at once.">Revoke</Action></td></tr>)}</tbody>
          </table>
        )}
      </View>
    </div>
  );
}

const FINISHED = ["delivered", "failed", "canceled"];

function Deliveries({ id }: { id: string }) {
  const log = useLoad(() => call(() => api.GET("/api/v1/webhooks/{webhook_id}/deliveries", { params: { path: { webhook_id: id }, query: { limit: 20 } } })), [id]);
  // deliveries are not jobs (no WebSocket news): look again while one waits for its next attempt
  const waiting = log.data?.items.some((x) => x.status === "pending");
  useEffect(() => {
    if (!waiting) return;
    const t = setTimeout(log.reload, 2000);
    return () => clearTimeout(t);
  }, [log.data]);
  const redeliver = (delivery: string) =>
    call(() => api.POST("/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", { params: { path: { webhook_id: id, delivery_id: delivery } } })).then(log.reload);
  return (
    <View of={log} empty={(d) => d.items.length === 0} emptyText="No deliveries yet: they are logged when a subscribed event happens.">
      {(d) => (
        <ul class="deliveries">
          {d.items.map((x) => (
            <li data-testid="delivery" data-status={x.status} data-attempts={x.attempt_count} data-event={x.event_id}>
              <div class="row">
                <span class={`badge ${x.status}`}>{x.status}</span> <b>{x.event_type}</b> <small>{when(x.created_at)}</small>
                {FINISHED.includes(x.status) && <Action class="link" run={() => redeliver(x.id)}>Redeliver</Action>}
              </div>
              <ol class="attempts">
                {x.attempts.map((a) => (
                  <li><small>#{a.attempt} {when(a.started_at)} · {a.status_code ?? "no answer"} · {a.latency_ms} ms{a.error ? ` · ${a.error}` : ""}{a.next_retry_at ? ` · retry ${when(a.next_retry_at)}` : ""}</small></li>
                ))}
              </ol>
            </li>
          ))}
        </ul>
      )}
    </View>
  );
}

const EVENTS = ["stream.playable", "stream.ready", "stream.failed", "video.deleted"];

function Webhooks() {
  const hooks = useLoad(() => call(() => api.GET("/api/v1/webhooks")), []);
  const [open, setOpen] = useState<string>();
  const [secret, setSecret] = useState<string>();
  const [events, setEvents] = useState(["stream.ready"]);
  const toggle = (e: string) => setEvents(events.includes(e) ? events.filter((x) => x !== e) : [...events, e]);
  const create = async (d: FormData, form: HTMLFormElement) => {
    const hook = await call(() => api.POST("/api/v1/webhooks", { body: { url: str(d, "url"), events } }));
    setSecret(hook.secret);
    form.reset();
    hooks.reload();
  };
  const remove = (id: string) => call(() => api.DELETE("/api/v1/webhooks/{webhook_id}", { params: { path: { webhook_id: id } } })).then(hooks.reload);
  const enable = (id: string) => call(() => api.POST("/api/v1/webhooks/{webhook_id}/enable", { params: { path: { webhook_id: id } } })).then(hooks.reload);
  return (
    <div>
      <h2>Webhooks</h2>
      <Form submit={create} label="Add webhook">
        <input name="url" type="url" placeholder="https://example.com/hook" aria-label="Endpoint URL" required />
        <fieldset class="row events">
          <legend>Events</legend>
          {EVENTS.map((e) => <label><input type="checkbox" checked={events.includes(e)} onChange={() => toggle(e)} /> {e}</label>)}
        </fieldset>
      </Form>
      {secret && <p role="status">Signing secret, shown once: <code data-testid="webhook-secret">{secret}</code></p>}
      <View of={hooks} empty={(d) => d.items.length === 0} emptyText="No webhooks.">
        {(d) => (
          <ul class="stack hooks">
            {d.items.map((h) => (
              <li data-testid="webhook">
                <code>{h.url}</code> <small>{h.events.join(", ")} · {h.enabled ? "enabled" : `disabled: ${h.disabled_reason ?? ""}`}</small>{" "}
                <button class="link" onClick={() => setOpen(open === h.id ? undefined : h.id)} aria-expanded={open === h.id}>Deliveries</button>{" "}
                {!h.enabled && <Action class="link" run={() => enable(h.id)}>Enable</Action>}
                <Action class="link danger" run={() => remove(h.id)} confirm="Delete this endpoint and its delivery log?">Delete</Action>
                {open === h.id && <Deliveries id={h.id} />}
              </li>
            ))}
          </ul>
        )}
      </View>
    </div>
  );
}

export function Developers() {
  return (
    <section class="columns">
      <Keys />
      <div>
        <Webhooks />
        <h2>API reference</h2>
        <p><a href="#/reference">The whole API</a>, rendered from <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
      </div>
    </section>
  );
}

type Schema = {
  $ref?: string; type?: string | string[]; properties?: Record<string, Schema>; required?: string[]; items?: Schema;
  anyOf?: Schema[]; oneOf?: Schema[]; enum?: unknown[]; format?: string; additionalProperties?: Schema | boolean; description?: string;
};
type Content = { content?: Record<string, { schema?: Schema }>; description?: string };
type Parameter = { name: string; in: string; required?: boolean; description?: string; schema?: Schema };
type Operation = { summary?: string; description?: string; operationId?: string; parameters?: Parameter[]; requestBody?: Content; responses?: Record<string, Content> };
type Doc = { paths: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, Schema> } };

/** A schema as a short TypeScript-like type: ``{ title: string; description?: string | null }``, named types by name
 * below the first level (their own shape is one click away in the schema list). */
function shape(s: Schema | undefined, doc: Doc, depth = 0): string {
  if (!s) return "unknown";
  if (s.$ref) {
    const name = s.$ref.split("/").pop() ?? "";
    const target = doc.components?.schemas?.[name];
    return depth > 0 || !target ? name : shape(target, doc, depth);
  }
  if (s.anyOf ?? s.oneOf) return (s.anyOf ?? s.oneOf ?? []).map((x) => shape(x, doc, depth)).join(" | ");
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.type === "array") return `${shape(s.items, doc, depth + 1)}[]`;
  if (s.properties) {
    if (depth > 1) return "object";
    const req = new Set(s.required ?? []);
    const pad = "  ".repeat(depth + 1);
    const fields = Object.entries(s.properties).map(([k, v]) => `${pad}${k}${req.has(k) ? "" : "?"}: ${shape(v, doc, depth + 1)};`);
    return `{\n${fields.join("\n")}\n${"  ".repeat(depth)}}`;
  }
  if (typeof s.additionalProperties === "object") return `Record<string, ${shape(s.additionalProperties, doc, depth + 1)}>`;
  const t = Array.isArray(s.type) ? s.type.join(" | ") : s.type ?? "unknown";
  return s.format ? `${t} (${s.format})` : t;
}

function Body({ of, doc }: { of?: Content; doc: Doc }) {
  const entries = Object.entries(of?.content ?? {});
  if (entries.length === 0) return null;
  return <>{entries.map(([type, c]) => <div><small class="muted">{type}</small><pre class="schema">{shape(c.schema, doc)}</pre></div>)}</>;
}

function OperationView({ method, path, op, doc }: { method: string; path: string; op: Operation; doc: Doc }) {
  return (
    <div data-testid="operation">
      <dt><code class="method">{method.toUpperCase()}</code> <code>{path}</code></dt>
      <dd>
        {op.summary ?? op.description ?? op.operationId}
        <details>
          <summary>Parameters and schemas</summary>
          {(op.parameters ?? []).length > 0 && (
            <table class="params">
              <thead><tr><th>Parameter</th><th>In</th><th>Type</th><th>About</th></tr></thead>
              <tbody>{(op.parameters ?? []).map((p) => <tr><td><code>{p.name}</code>{p.required ? " *" : ""}</td><td>{p.in}</td><td><code>{shape(p.schema, doc, 1)}</code></td><td><small>{p.description}</small></td></tr>)}</tbody>
            </table>
          )}
          {op.requestBody && <><h4>Request body</h4><Body of={op.requestBody} doc={doc} /></>}
          <h4>Responses</h4>
          <ul>{Object.entries(op.responses ?? {}).map(([code, r]) => <li><small><b>{code}</b> {r.description}</small><Body of={r} doc={doc} /></li>)}</ul>
        </details>
      </dd>
    </div>
  );
}

async function loadDoc(): Promise<Doc> {
  const r = await fetch("/api/v1/openapi.json");
  if (!r.ok) throw new Error(`The API document could not be loaded (HTTP ${r.status}).`);
  return (await r.json()) as Doc;
}

/** The OpenAPI document the gateway serves, as a readable list of operations with their parameters, request and
 * response schemas and error codes. */
export function Reference() {
  const doc = useLoad(loadDoc, []);
  return (
    <section>
      <h1>API reference</h1>
      <View of={doc}>
        {(d) => (
          <dl class="reference">
            {Object.entries(d.paths).flatMap(([path, ops]) =>
              Object.entries(ops).map(([method, op]) => <OperationView method={method} path={path} op={op} doc={d} />),
            )}
          </dl>
        )}
      </View>
    </section>
  );
}
