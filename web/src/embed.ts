// The embeddable player, /embed/<video id>?token=<playback token> (the gateway serves embed.html there, framable
// by any site): the signed stream through hls.js from the app's own assets, or Safari's native HLS. No sign-in —
// the token is the permission, as in a signed link.
import "./embed.css";
import { playbackProblem } from "./playback";

const video = document.getElementById("player") as HTMLVideoElement;
const problem = document.getElementById("problem") as HTMLParagraphElement;
const id = location.pathname.split("/").filter(Boolean)[1] ?? "";
const token = new URLSearchParams(location.search).get("token") ?? "";

function fail(text: string): void {
  problem.textContent = text;
  problem.hidden = false;
  video.hidden = true;
}

if (!id || !token) fail("This embed link is incomplete: it needs a video and a playback token.");
else {
  const src = `/play/${encodeURIComponent(id)}/master.m3u8?token=${encodeURIComponent(token)}`;
  void import("hls.js").then(({ default: Hls }) => {
    if (!Hls.isSupported()) {
      video.src = src; // Safari: native HLS
      return;
    }
    const hls = new Hls({ enableWorker: false }); // the CSP allows no blob: scripts
    hls.on(Hls.Events.ERROR, (_e, data) => {
      // no sign-in here to sign again with: an expired token is the end of this link
      if (data.fatal) fail(playbackProblem(data.type === Hls.ErrorTypes.NETWORK_ERROR, data.response?.code));
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  });
}
