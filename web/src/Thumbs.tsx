// Thumbnails over a seek bar: streaming's sprite index (WebVTT cues of `sprite.jpg?token=…#xywh=x,y,w,h`).
import type { RefObject } from "preact";
import { useEffect, useState } from "preact/hooks";
import { clock } from "./ui";

type Thumb = { start: number; end: number; url: string; x: number; y: number; w: number; h: number };

const seconds = (t: string) => t.split(":").reduce((acc, part) => acc * 60 + Number(part), 0);

function parse(vtt: string, base: string): Thumb[] {
  const out: Thumb[] = [];
  const cue = /([\d:.]+)\s*-->\s*([\d:.]+)\s*\n\s*(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/g;
  for (const m of vtt.matchAll(cue)) {
    const [, a = "", b = "", url = "", x, y, w, h] = m;
    out.push({ start: seconds(a), end: seconds(b), url: new URL(url, base).href, x: +x!, y: +y!, w: +w!, h: +h! });
  }
  return out;
}

/** A seek bar under the player that previews the frame under the pointer. */
export function SeekBar({ vtt, video }: { vtt: string; video: RefObject<HTMLVideoElement> }) {
  const [thumbs, setThumbs] = useState<Thumb[]>([]);
  const [time, setTime] = useState(0);
  const [hover, setHover] = useState<{ at: number; left: number }>();
  const duration = video.current?.duration || thumbs[thumbs.length - 1]?.end || 0;
  useEffect(() => {
    const base = new URL(vtt, location.origin).href;
    fetch(vtt).then((r) => (r.ok ? r.text() : "")).then((t) => setThumbs(parse(t, base)), () => setThumbs([]));
  }, [vtt]);
  useEffect(() => {
    const el = video.current;
    const tick = () => setTime(el?.currentTime ?? 0);
    el?.addEventListener("timeupdate", tick);
    return () => el?.removeEventListener("timeupdate", tick);
  }, [video.current]);
  // its room is kept while the thumbnails load: the page does not move under the viewer's pointer
  if (thumbs.length === 0 || !duration) return <div class="seekbar" aria-hidden="true" />;
  const move = (e: PointerEvent) => {
    const box = (e.currentTarget as HTMLElement).getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (e.clientX - box.left) / box.width));
    setHover({ at: f * duration, left: e.clientX - box.left });
  };
  const t = hover && thumbs.find((c) => hover.at >= c.start && hover.at < c.end);
  return (
    <div class="seekbar" onPointerMove={move} onPointerLeave={() => setHover(undefined)}>
      <input type="range" min={0} max={duration} step={0.1} value={time} aria-label="Seek"
        onInput={(e) => video.current && (video.current.currentTime = Number(e.currentTarget.value))} />
      {hover && t && (
        // a style object is set through the CSSOM (el.style), which the CSP allows; a style attribute it would not
        <div class="thumb" data-testid="seek-thumb" style={{
          left: `${hover.left}px`, width: `${t.w}px`, height: `${t.h}px`,
          backgroundImage: `url("${t.url}")`, backgroundPosition: `-${t.x}px -${t.y}px`,
        }}>
          <span>{clock(hover.at)}</span>
        </div>
      )}
    </div>
  );
}
