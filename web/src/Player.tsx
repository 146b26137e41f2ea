// hls.js in every browser that has Media Source Extensions; Safari's native HLS otherwise. hls.js is most of the
// app's weight: it is loaded with the first player, not with the app.
import type Hls from "hls.js";
import type { RefObject } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { playbackProblem } from "./playback";
import { SeekBar } from "./Thumbs";
import { ErrorBox } from "./ui";

type Option = { index: number; label: string };

function Menu(props: { label: string; options: Option[]; value: number; pick: (n: number) => void; none: string }) {
  if (props.options.length === 0) return null;
  return (
    <label>
      {props.label}{" "}
      <select value={props.value} onChange={(e) => props.pick(Number(e.currentTarget.value))}>
        <option value={-1}>{props.none}</option>
        {props.options.map((o) => <option value={o.index}>{o.label}</option>)}
      </select>
    </label>
  );
}

/** The stream to play: its signed URL, where to start and whether to play at once (a resumed stream). */
type Source = { url: string; at: number; play: boolean };

type Props = {
  src: string;
  /** A freshly signed stream URL (a playback token lives an hour: a page left open outlives it). */
  sign: () => Promise<string>;
  poster?: string;
  thumbnails?: string;
  video: RefObject<HTMLVideoElement>;
};
export function Player({ src, sign, poster, thumbnails, video }: Props) {
  const hls = useRef<Hls | null>(null);
  const [source, setSource] = useState<Source>({ url: src, at: -1, play: false });
  const [levels, setLevels] = useState<Option[]>([]);
  const [subs, setSubs] = useState<Option[]>([]);
  const [level, setLevel] = useState(-1);
  const [shownLevel, setShownLevel] = useState(-1);
  const [sub, setSub] = useState(-1);
  const [problem, setProblem] = useState<string>();
  // the picks (by label: a new stream may list more renditions or caption tracks) outlive a re-signed or new stream;
  // a renewal is tried once until a fragment loads again; where it stopped
  const picked = useRef<{ level?: string; sub?: string }>({});
  const renewed = useRef(false);
  const stopped = useRef({ at: 0, play: false });
  /** Where the viewer is: the element's time and play state, or where the stream was to start if it showed no frame. */
  const position = () => {
    const el = video.current;
    if (el && el.readyState > 0) stopped.current = { at: el.currentTime, play: !el.paused };
    return stopped.current;
  };
  // a new stream of the same video (a new caption track or rendition) carries on where this one is, as a renewal does
  useEffect(() => setSource((s) => (s.url === src ? s : { url: src, ...position() })), [src]);

  /** Load a newly signed stream where it stopped, or say why not. */
  const resume = (why: string) =>
    sign().then(
      (url) => setSource({ url, ...stopped.current }),
      () => setProblem(why),
    );

  useEffect(() => {
    const el = video.current;
    if (!el) return;
    let gone = false;
    setProblem(undefined);
    stopped.current = { at: Math.max(source.at, 0), play: source.play };
    void import("hls.js").then(({ default: Hls }) => {
      if (gone) return;
      if (!Hls.isSupported()) {
        el.src = source.url; // Safari: native HLS, its own quality and caption menus
        if (source.at > 0 || source.play) {
          el.addEventListener("loadedmetadata", () => {
            el.currentTime = Math.max(source.at, 0);
            if (source.play) void el.play().catch(() => null);
          }, { once: true });
        }
        return;
      }
      // no worker: the page's CSP allows no blob: scripts
      const h = new Hls({ enableWorker: false, startPosition: source.at });
      hls.current = h;
      h.subtitleDisplay = false;
      h.on(Hls.Events.MANIFEST_PARSED, () => {
        const found = h.levels.map((l, index) => ({ index, label: l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kb/s` }));
        setLevels(found);
        const n = found.findIndex((o) => o.label === picked.current.level);
        setLevel(n);
        if (n >= 0) h.loadLevel = n;
        if (source.play) void el.play().catch(() => null);
      });
      h.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => setShownLevel(data.level));
      const showSub = () => {
        const found = h.subtitleTracks.map((t, index) => ({ index, label: t.name || t.lang || `Track ${index + 1}` }));
        setSubs(found);
        const n = found.findIndex((o) => o.label === picked.current.sub);
        setSub(n);
        if (n >= 0) {
          h.subtitleTrack = n;
          h.subtitleDisplay = true;
        }
      };
      h.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, showSub);
      // again once the first fragment is in: the text tracks of the stream this one replaced, hidden as it went,
      // can make hls.js turn the picked track off in between
      h.once(Hls.Events.FRAG_BUFFERED, showSub);
      h.on(Hls.Events.FRAG_LOADED, () => (renewed.current = false));
      let mediaRecovered = false;
      h.on(Hls.Events.ERROR, (_e, data) => {
        const network = data.type === Hls.ErrorTypes.NETWORK_ERROR;
        // a refused token (expired: a page left open past its hour) is not worth hls.js's own retries of the same
        // URL (six of a segment, over half a minute): it is renewed at once
        const refused = network && [401, 403, 410].includes(data.response?.code ?? 0);
        if (!data.fatal && !refused) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !mediaRecovered) {
          mediaRecovered = true; // a decoding hiccup: hls.js rebuilds the media buffer once
          h.recoverMediaError();
          return;
        }
        position(); // a stream that failed before showing a frame stopped where it was to start (set above)
        h.destroy();
        hls.current = null;
        const why = playbackProblem(network, data.response?.code);
        // an expired token (or a dropped connection): sign again once and carry on where it stopped
        if (network && !renewed.current) {
          renewed.current = true;
          void resume(why);
        } else setProblem(why);
      });
      h.loadSource(source.url);
      h.attachMedia(el);
    });
    return () => {
      gone = true;
      hls.current?.destroy();
      hls.current = null;
    };
  }, [source]);
  const tryAgain = () => {
    setProblem(undefined);
    renewed.current = true; // this is the renewal: a failure now is shown at once
    stopped.current.play = true;
    void resume("The video could not be loaded.");
  };
  const pickLevel = (n: number) => {
    setLevel(n);
    picked.current.level = levels.find((o) => o.index === n)?.label;
    // from the next segment (2 s at most here), as Mux's player does: what is buffered for the next few seconds is
    // replaced, not the whole buffer (hls.js's immediate switch, ``currentLevel``, empties it and can stall play)
    if (hls.current) hls.current.nextLevel = n;
  };
  const pickSub = (n: number) => {
    setSub(n);
    picked.current.sub = subs.find((o) => o.index === n)?.label;
    const h = hls.current;
    if (!h) return;
    h.subtitleTrack = n;
    h.subtitleDisplay = n >= 0;
  };
  return (
    <div class="player" data-level={shownLevel}>
      <video ref={video} controls playsInline poster={poster} data-testid="player" />
      {thumbnails && <SeekBar vtt={thumbnails} video={video} />}
      {problem && <ErrorBox error={problem} retry={tryAgain} />}
      <div class="controls">
        <Menu label="Quality" options={levels} value={level} pick={pickLevel} none="Auto" />
        <Menu label="Captions" options={subs} value={sub} pick={pickSub} none="Off" />
      </div>
    </div>
  );
}
