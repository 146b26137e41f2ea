import { useEffect, useRef, useState } from "preact/hooks";
import { api, call, download, getFile, here, plain, type S } from "../api/client";
import { Player } from "../Player";
import { Action, clock, Form, StreamBadge, Tabs, useJobs, useLoad, useReloadOn, View, when, str } from "../ui";

const TABS = { captions: "Captions", analysis: "Analysis", playback: "Playback" };

type Cue = { id: string; start: number; end: number; text: string };

/** Cue text and times of one track, saved whole (PUT .../cues, refused if someone saved in between). */
function CueEditor({ track, focus, done }: { track: S["TrackView"]; focus?: string; done: () => void }) {
  const cues = useLoad(() => getFile(`/api/v1/captions/${track.id}.json`).then((r) => r.json() as Promise<{ cues: Cue[] }>), [track.id, track.version]);
  const [edits, setEdits] = useState<Record<string, Partial<Cue>>>({});
  const edit = (c: Cue, patch: Partial<Cue>) => setEdits({ ...edits, [c.id]: { ...edits[c.id], ...patch } });
  const save = (all: Cue[]) =>
    call(() => api.PUT("/api/v1/captions/{track_id}/cues", {
      params: { path: { track_id: track.id } },
      // the track's JSON has more per cue (its lines): the edit sends only what a cue is made of
      body: {
        base_version: track.version,
        cues: all.map((c) => {
          const e = { ...c, ...edits[c.id] };
          return { id: e.id, start: e.start, end: e.end, text: e.text };
        }),
      },
    })).then(done);
  return (
    <View of={cues} empty={(d) => d.cues.length === 0} emptyText="This track has no cues.">
      {(d) => (
        <div class="stack cue-editor">
          {d.cues.map((c) => (
            <div class="row">
              <input type="number" step="0.01" min={0} value={edits[c.id]?.start ?? c.start} onInput={(e) => edit(c, { start: Number(e.currentTarget.value) })} aria-label="Start" size={6} />
              <input type="number" step="0.01" min={0} value={edits[c.id]?.end ?? c.end} onInput={(e) => edit(c, { end: Number(e.currentTarget.value) })} aria-label="End" size={6} />
              <input class="grow" value={edits[c.id]?.text ?? c.text} onInput={(e) => edit(c, { text: e.currentTarget.value })} aria-label="Text" autoFocus={c.id === focus} />
            </div>
          ))}
          <Action run={() => save(d.cues)}>Save cues</Action>
        </div>
      )}
    </View>
  );
}

type Report = S["QualityReportView"];
type Problem = S["CueProblem"];
const cues = (n: number) => (n === 1 ? "1 cue" : `${n} cues`);
const seconds = (s: number) => (Math.abs(s - 5 / 6) < 0.002 ? "5/6 s" : `${s} s`);

/** Each rule of the track's language as a sentence a subtitler reads: met by all cues, or which cues break it. */
function sentences(r: Report): { rule: string; ok: boolean; text: string }[] {
  const l = r.limits;
  const n = (rule: string) => r.counts[rule] ?? 0;
  const chars = `${l.max_chars_per_line} characters${l.half_width_latin ? " (Latin letters, digits, spaces and punctuation count half)" : ""}`;
  const said: Record<string, [string, string]> = {
    // rule: [when every cue meets it, when some do not]
    line_length: [`All ${cues(r.cue_count)} within ${chars} per line`, `${n("line_length")} line(s) longer than ${chars}`],
    line_count: [`No cue has more than ${l.max_lines} lines`, `${cues(n("line_count"))} with more than ${l.max_lines} lines`],
    reading_speed: [`All cues read at ${l.max_chars_per_second} characters per second or slower`, `${cues(n("reading_speed"))} read faster than ${l.max_chars_per_second} characters per second`],
    min_duration: [`All cues stay up at least ${seconds(l.min_duration_s)}`, `${cues(n("min_duration"))} shorter than ${seconds(l.min_duration_s)}`],
    max_duration: [`No cue stays up longer than ${seconds(l.max_duration_s)}`, `${cues(n("max_duration"))} longer than ${seconds(l.max_duration_s)}`],
    gap: [`At least ${l.min_gap_ms} ms (2 frames) between cues`, `${cues(n("gap"))} less than ${l.min_gap_ms} ms (2 frames) after the one before`],
    overlap: ["No cues overlap", `${cues(n("overlap"))} start before the one before has ended`],
    empty: ["No empty cues or lines", `${cues(n("empty"))} with an empty line`],
    line_break: ["No line ends on an article apart from its noun", `${cues(n("line_break"))} with a line ending on an article`],
    bounds: ["All cues inside the video", `${cues(n("bounds"))} outside the video's length`],
    duplicate_id: ["Every cue has its own id", `${cues(n("duplicate_id"))} sharing an id`],
  };
  return Object.entries(said).map(([rule, [ok, bad]]) => ({ rule, ok: n(rule) === 0, text: n(rule) === 0 ? ok : bad }));
}

/** A track's quality report in plain words; a problem cue seeks the player to it or opens it in the cue editor. */
function QualityReport({ track, seek, edit }: { track: S["TrackView"]; seek: (s: number) => void; edit: (cue: string) => void }) {
  const report = useLoad(() => call(() => api.GET("/api/v1/captions/{track_id}/quality", { params: { path: { track_id: track.id } } })), [track.id, track.version]);
  return (
    <View of={report}>
      {(r) => {
        const lines = sentences(r);
        const bad = lines.filter((x) => !x.ok);
        const byRule = (rule: string) => r.problems.filter((p) => p.rule === rule);
        const Cue = ({ p }: { p: Problem }) => (
          <li>
            <button class="link seek" data-testid="problem-cue" data-start={p.start_s} onClick={() => seek(p.start_s)}>cue {p.number} at {clock(p.start_s)}</button>{" "}
            <small class="muted">{p.detail}</small>{" "}
            {track.status === "ready" && <button class="link" onClick={() => edit(p.cue_id)}>edit</button>}
          </li>
        );
        return (
          <div class="stack" data-testid="quality-report" data-problems={r.problems.length}>
            <h3>Quality of {track.label || track.language} (version {r.version})</h3>
            <p>{bad.length === 0 ? `All ${cues(r.cue_count)} meet the subtitle rules for ${(track.label || r.language).replace(" (translated)", "")}.` : `${r.problems.length} problem(s) in ${cues(r.cue_count)}:`}</p>
            <ul class="quality">
              {[...bad, ...lines.filter((x) => x.ok)].map((x) => (
                <li class={x.ok ? "ok" : "error"} data-rule={x.rule}>
                  {x.ok ? "✓ " : "✗ "}{x.text}
                  {!x.ok && <ul>{byRule(x.rule).slice(0, 20).map((p) => <Cue p={p} />)}</ul>}
                </li>
              ))}
            </ul>
          </div>
        );
      }}
    </View>
  );
}

function Captions({ id, seek }: { id: string; seek: (s: number) => void }) {
  const [editing, setEditing] = useState<{ track: S["TrackView"]; cue?: string }>();
  const [reported, setReported] = useState<string>();
  const params = { path: { video_id: id } };
  const tracks = useLoad(() => call(() => api.GET("/api/v1/videos/{video_id}/captions", { params })), [id]);
  useReloadOn(tracks, ["captions"], id);
  const generate = async (d: FormData) => {
    const translate = str(d, "translate").split(",").map((s) => s.trim()).filter(Boolean);
    await call(() => api.POST("/api/v1/videos/{video_id}/captions", { params, body: { language: str(d, "language") || undefined, translate_to: translate } }));
    tracks.reload();
  };
  // the report shown: the track picked in the table, else the first one
  const shown = tracks.data?.items.find((t) => t.id === reported) ?? tracks.data?.items[0];
  const problems = (t: S["TrackView"]) => Object.values(t.quality).reduce((a, b) => a + b, 0);
  const file = (t: S["TrackView"], ext: "vtt" | "srt") =>
    download(`/api/v1/captions/${t.id}.${ext}`, `${t.language}.${ext}`);
  return (
    <>
      <Form submit={generate} label="Generate captions" class="row">
        <input name="language" placeholder="Language (auto)" size={12} />
        <input name="translate" placeholder="Translate to, e.g. ko,en" size={18} />
      </Form>
      <View of={tracks} empty={(d) => d.items.length === 0} emptyText="No captions yet.">
        {(d) => (
          <table>
            <thead><tr><th>Language</th><th>Status</th><th>Cues</th><th>Quality</th><th /></tr></thead>
            <tbody>
              {d.items.map((t) => (
                <tr data-testid="track" data-version={t.version} data-kind={t.kind}>
                  <td>{t.label || t.language} <small class="muted">{t.kind}</small></td>
                  <td><span class={`badge ${t.status}`}>{t.status}</span></td>
                  <td>{t.cue_count}</td>
                  <td>
                    <button class="link" onClick={() => setReported(t.id)} aria-pressed={t.id === shown?.id}>
                      {problems(t) === 0 ? "meets the rules" : `${problems(t)} problem(s)`}
                    </button>
                  </td>
                  <td>
                    <Action class="link" run={() => file(t, "vtt")}>VTT</Action> <Action class="link" run={() => file(t, "srt")}>SRT</Action>{" "}
                    {t.status === "ready" && <button class="link" onClick={() => setEditing({ track: t })}>Edit</button>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </View>
      {shown && <QualityReport track={shown} seek={seek} edit={(cue) => setEditing({ track: shown, cue })} />}
      {editing && <CueEditor track={editing.track} focus={editing.cue} done={() => { setEditing(undefined); tracks.reload(); }} />}
    </>
  );
}

function Analysis({ id, seek }: { id: string; seek: (s: number) => void }) {
  // the video's latest analysis, however many the user has of other videos
  const found = useLoad(async () => {
    const page = await call(() => api.GET("/api/v1/analyses", { params: { query: { video_id: id, limit: 1 } } }));
    return { item: page.items[0] };
  }, [id]);
  useReloadOn(found, ["analysis"]);
  // the job's last snapshot can arrive a moment before its result is readable: look again until it is
  const pending = found.data?.item && !found.data.item.result && !["failed", "canceled"].includes(found.data.item.state);
  useEffect(() => {
    if (!pending) return;
    const t = setTimeout(found.reload, 2000);
    return () => clearTimeout(t);
  }, [found.data]);
  const start = () => call(() => api.POST("/api/v1/analyses", { body: { video_id: id } })).then(found.reload);
  const Seek = ({ at, children, testid }: { at: number; children: string; testid: string }) => (
    <button class="link seek" data-start={at} data-testid={testid} onClick={() => seek(at)}>{clock(at)} {children}</button>
  );
  return (
    <View of={found} empty={(d) => !d.item} emptyText={<Action run={start}>Analyse this video</Action>}>
      {({ item }) => {
        const r = item!.result;
        if (!r) {
          // a failed or canceled analysis can be run again (a succeeded one would answer from its cache)
          const ended = ["failed", "canceled"].includes(item!.state);
          return (
            <p class={item!.error ? "error" : "muted"} role="status" data-testid="analysis-state" data-state={item!.state} data-id={item!.id}>
              Analysis {item!.state}{item!.error ? `: ${plain(item!.error.code, item!.error.message ?? "")}` : "…"}{" "}
              {ended && <Action run={start}>Analyse again</Action>}
            </p>
          );
        }
        return (
          <div class="stack">
            <h3>{r.title}</h3>
            <p>{r.summary}</p>
            {r.key_points.length > 0 && <ul>{r.key_points.map((k) => <li>{k}</li>)}</ul>}
            {r.chapters.length > 0 && <h4>Chapters</h4>}
            <ol class="chapters">{r.chapters.map((c) => <li><Seek at={c.start_s} testid="chapter">{c.title}</Seek></li>)}</ol>
            {r.highlights.length > 0 && <h4>Highlights</h4>}
            <ul>{r.highlights.map((h) => <li><Seek at={h.start_s} testid="highlight">{h.quote}</Seek></li>)}</ul>
            <Transcript id={item!.id} seek={seek} />
          </div>
        );
      }}
    </View>
  );
}

/** The transcript the analysis used, a segment a line; a click seeks the player to it. */
function Transcript({ id, seek }: { id: string; seek: (s: number) => void }) {
  const transcript = useLoad(() => call(() => api.GET("/api/v1/analyses/{analysis_id}/transcript", { params: { path: { analysis_id: id } } })), [id]);
  return (
    <>
      <h4>Transcript</h4>
      <View of={transcript} empty={(t) => t.segments.length === 0} emptyText="The transcript is empty.">
        {(t) => (
          <>
            <p class="muted"><small>{t.language} · from {t.source} · <Action class="link" run={() => download(`/api/v1/analyses/${id}/transcript.txt`, "transcript.txt")}>Download .txt</Action></small></p>
            <ol class="transcript" data-testid="transcript">
              {t.segments.map((g) => <li><button class="link" onClick={() => seek(g.start_s)}>{clock(g.start_s)}</button> {g.text}</li>)}
            </ol>
          </>
        )}
      </View>
    </>
  );
}

function Playback({ id }: { id: string }) {
  const [link, setLink] = useState<S["PlaybackView"]>();
  const make = async (d: FormData) =>
    setLink(await call(() => api.POST("/api/v1/videos/{video_id}/playback", { params: { path: { video_id: id } }, body: { expires_in: Number(str(d, "hours")) * 3600 } })));
  const url = link && new URL(link.hls_url, location.origin).href;
  // an <iframe> of the gateway's embed page, which plays the signed stream with hls.js in every browser (a bare
  // <video src=".m3u8"> plays only where HLS is native)
  const token = url && new URL(url).searchParams.get("token");
  const embedUrl = token && `${location.origin}/embed/${encodeURIComponent(id)}?token=${encodeURIComponent(token)}`;
  const embed = embedUrl && `<iframe src="${embedUrl}" width="640" height="360" allow="autoplay; fullscreen" allowfullscreen style="border:0"></iframe>`;
  const snippet = useRef<HTMLTextAreaElement>(null);
  const [copied, setCopied] = useState<string>();
  // the clipboard API exists only in secure contexts (https, localhost) and may be refused: then the snippet is
  // selected for the keyboard's copy
  const copy = async (text: string) => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied("Copied.");
    } catch {
      snippet.current?.focus();
      snippet.current?.select();
      setCopied("Press Ctrl+C (⌘C on a Mac) to copy the selected snippet.");
    }
  };
  return (
    <div class="stack">
      <Form submit={make} label="Make a signed link" class="row">
        <label>Valid for <input name="hours" type="number" min="1" max="24" value="1" size={3} /> hours</label>
      </Form>
      {link && url && embed && (
        <>
          <p>Expires {when(link.expires_at)}</p>
          <input readOnly value={url} data-testid="signed-link" />
          <textarea readOnly rows={3} data-testid="embed-snippet" ref={snippet}>{embed}</textarea>
          <button onClick={() => void copy(embed)}>Copy embed snippet</button>
          {copied && <p class="muted" role="status" data-testid="copy-note">{copied}</p>}
        </>
      )}
    </div>
  );
}

export function Video({ id }: { id: string }) {
  const [tab, setTab] = useState<keyof typeof TABS>("captions");
  const player = useRef<HTMLVideoElement>(null);
  const params = { path: { video_id: id } };
  const signLink = () => call(() => api.POST("/api/v1/videos/{video_id}/playback", { params, body: {} }));
  const sign = () => signLink().then((p) => here(p.hls_url));
  // the page is read again on every state change of the video's transcode and captions jobs; a new link (a new
  // token) would restart the player, so one is signed only when the stream itself changed (a new rendition or
  // caption track is in a new master playlist), and the player carries on where it was with it
  const signed = useRef<{ stream: string; play: S["PlaybackView"] }>();
  const video = useLoad(async () => {
    const info = await call(() => api.GET("/api/v1/videos/{video_id}", { params }));
    const stream = (await api.GET("/api/v1/videos/{video_id}/stream", { params })).data;
    const status = stream?.status ?? "processing";
    const playable = status === "playable" || status === "ready";
    const key = JSON.stringify([id, status, stream?.renditions, stream?.subtitles]);
    if (playable && signed.current?.stream !== key) signed.current = { stream: key, play: await signLink() };
    const play = playable ? signed.current?.play : undefined;
    return { info, status, error: stream?.error, play, subtitles: stream?.subtitles.length ?? 0 };
  }, [id]);
  useReloadOn(video, ["transcode", "captions"], id);
  // streaming adds a new caption track to the stream after the captions job has ended (it hears of the track on
  // the bus): when the stream re-read at the job's end does not have it yet, ask again once a second (30 s at
  // most), and re-read the player's stream once it does
  const [subtitlesAfter, setSubtitlesAfter] = useState<number>();
  const shown = useRef<number>();
  shown.current = video.data?.subtitles;
  useJobs((job) => {
    if (job.kind === "captions" && job.status === "succeeded" && (!job.subject || job.subject.id === id)) setSubtitlesAfter(video.data?.subtitles ?? 0);
  });
  useEffect(() => {
    if (subtitlesAfter === undefined) return;
    let left = 30;
    const timer = setInterval(async () => {
      left--;
      let reload = false;
      if ((shown.current ?? 0) <= subtitlesAfter) { // the re-read at the job's end did not have it yet
        const now = (await api.GET("/api/v1/videos/{video_id}/stream", { params }).catch(() => null))?.data?.subtitles.length ?? 0;
        if (now <= subtitlesAfter && left > 0) return;
        reload = now > subtitlesAfter;
      }
      clearInterval(timer);
      setSubtitlesAfter(undefined);
      if (reload) video.reload();
    }, 1000);
    return () => clearInterval(timer);
  }, [subtitlesAfter]);
  const retry = () => call(() => api.POST("/api/v1/videos/{video_id}/stream/retry", { params })).then(video.reload);
  const seek = (s: number) => {
    const v = player.current;
    if (v) {
      v.currentTime = s;
      void v.play().catch(() => null);
    }
  };
  return (
    <View of={video}>
      {(d) => (
        <section>
          <h1>{d.info.title || "Untitled"}</h1>
          {d.play ? (
            <Player key={id} src={here(d.play.hls_url)} sign={sign} poster={here(d.play.poster_url)} thumbnails={here(d.play.thumbnails_vtt_url)} video={player} />
          ) : (
            <p class={d.error ? "error" : "muted"} role="status">
              {d.error ? `Processing failed: ${plain(d.error.code, d.error.message)} ` : "Processing… the player appears when the video is playable."}
              {d.error && <Action run={retry}>Retry</Action>}
            </p>
          )}
          <p class="muted">{clock(d.info.duration_s)} · {d.info.width}×{d.info.height} · <StreamBadge status={d.status} error={d.error ? plain(d.error.code, d.error.message) : undefined} /></p>
          <Tabs tabs={TABS} current={tab} pick={setTab} />
          {tab === "captions" && <Captions id={id} seek={seek} />}
          {tab === "analysis" && <Analysis id={id} seek={seek} />}
          {tab === "playback" && <Playback id={id} />}
        </section>
      )}
    </View>
  );
}
