// Error states and the player's failures, in Debian's Chromium driven by playwright-core: a user with one video of
// two renditions (uploaded and made ready by the test) signs in; each page's main API call answers 503 (the page
// shows its error box, and "Try again" loads it once the API is back); the Quality menu lists the renditions and
// switches between them; a playback token that stops working mid-play (its requests answered 403, as an expired
// token is) is renewed by the player, which carries on where it was; a failure that persists says so, and "Try
// again" resumes; the tabs under the player stay where they were first shown as the stream loads; "Copy embed
// snippet" without a clipboard selects the snippet; the Analysis tab asks for this video's analyses only; the page's
// reads of the video at each state of a captions job do not restart the player (the clip's tone has no speech: the
// job fails, and so does its analysis, which "Analyse again" runs anew); a new caption track (a spoken clip's) comes
// in a newly signed stream that carries on where the player was.
//
//   BASE=http://127.0.0.1:8080 EMAIL=… PASSWORD=… VIDEO_ID=… SPEECH_ID=… FAILED=/tmp node web/tests/states.mjs
// Prints one JSON line of what it saw; exits non-zero (with the failing step) otherwise.
import { chromium } from "playwright-core";

const { BASE, EMAIL, PASSWORD, VIDEO_ID, SPEECH_ID, FAILED } = process.env;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--autoplay-policy=no-user-gesture-required"],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
page.setDefaultTimeout(20_000);
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
// the playback tokens the player's requests carried, in order, and the renewals it asked for
const tokens = [];
let signed = 0;
let signedSpeech = 0;
page.on("request", (r) => {
  const url = new URL(r.url());
  if (url.pathname.startsWith("/play/")) {
    const token = url.searchParams.get("token");
    if (token && tokens.at(-1) !== token) tokens.push(token);
  } else if (r.method() === "POST" && url.pathname === `/api/v1/videos/${VIDEO_ID}/playback`) signed++;
  else if (r.method() === "POST" && url.pathname === `/api/v1/videos/${SPEECH_ID}/playback`) signedSpeech++;
});
// the last answers to the player's requests (said when a step fails)
const answers = [];
const noteAnswer = (said) => answers.push(said) > 12 && answers.shift();
page.on("response", (r) => {
  const url = new URL(r.url());
  if (url.pathname.startsWith("/play/")) noteAnswer(`${r.status()} ${url.pathname.split("/").slice(-2).join("/")}`);
});
page.on("requestfailed", (r) => {
  const url = new URL(r.url());
  if (url.pathname.startsWith("/play/")) noteAnswer(`failed (${r.failure()?.errorText}) ${url.pathname.split("/").slice(-2).join("/")}`);
});
// the job snapshots the page heard on its WebSocket
const jobs = [];
page.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => {
  const job = typeof payload === "string" && payload.startsWith("{") ? JSON.parse(payload).job : undefined;
  if (job) jobs.push(job);
}));
/** The first job ``f`` picks out of the page's live updates, once there is one (a minute at most). */
async function heard(f) {
  for (const end = Date.now() + 60_000; Date.now() < end; await page.waitForTimeout(250)) {
    const job = jobs.find(f);
    if (job) return job;
  }
  throw new Error(`no job heard: ${f}`);
}

// page.waitForFunction evaluates a string in the page, which the app's CSP refuses: poll evaluate instead
async function until(fn, arg, timeout = 20_000) {
  for (const end = Date.now() + timeout; Date.now() < end; await page.waitForTimeout(250)) {
    if (await page.evaluate(fn, arg)) return;
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${fn} (${JSON.stringify(arg)})`);
}
const player = page.getByTestId("player");
const playing = () => player.evaluate((v) => ({ time: v.currentTime, height: v.videoHeight, paused: v.paused }));
/** Wait until the player has played ``seconds`` past ``from`` (its height then). */
async function advances(from, seconds = 1) {
  await until(([t, s]) => { const v = document.querySelector("video"); return v.readyState >= 2 && v.currentTime > t + s; }, [from, seconds]);
  return playing();
}
const alert = page.getByRole("alert");
// streaming's answer to a request whose playback token has expired (the API signs for 60 s at the least)
const expiredAnswer = { status: 403, contentType: "application/problem+json", body: JSON.stringify({ type: "about:blank", title: "Forbidden", status: 403, code: "playback.token_expired", detail: "the playback token has expired" }) };
const problem = { status: 503, contentType: "application/problem+json", body: JSON.stringify({ type: "about:blank", title: "Service Unavailable", status: 503, code: "upstream.unavailable", detail: "The service is restarting." }) };

// each page's main call: a name, the page, its call's path (any query; or a test of the URL), what the page shows once
// it has loaded, and what the user does on the page before that call is made (if anything)
const tab = (name) => async () => {
  await page.getByRole("tab", { name }).click();
  await page.locator('[role="tab"][aria-selected="true"]', { hasText: name }).waitFor();
};
const PAGES = [
  ["library", "library", "/api/v1/videos", '[data-testid="video-card"]'],
  ["video", `video/${VIDEO_ID}`, `/api/v1/videos/${VIDEO_ID}`, '[data-testid="player"]'],
  ["captions", `video/${VIDEO_ID}`, `/api/v1/videos/${VIDEO_ID}/captions`, 'text="No captions yet."'],
  ["analysis", `video/${VIDEO_ID}`, "/api/v1/analyses", 'button:has-text("Analyse this video")', tab("Analysis")],
  ["add", "add", (url) => url.pathname.startsWith("/api/v1/searches/"), '[data-testid="search"]', async () => {
    await page.getByPlaceholder("What to look for").fill("harbour at dawn");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    // the results are read again at each of the search job's states (the user's only search): wait for its last
    await heard((j) => j.kind === "search" && ["succeeded", "failed", "canceled"].includes(j.status));
  }],
  ["jobs", "jobs", "/api/v1/jobs", '[data-testid="job"]'],
  ["credits", "credits", "/api/v1/billing/balance", '[data-testid="available"]'],
  ["batches", "batches", "/api/v1/analyses/batches", 'text="No batches yet."'],
  ["rankings", "rankings", "/api/v1/rankings", 'text="No rankings yet."'],
  ["developers", "developers", "/api/v1/auth/keys", 'text="No API keys."'],
];

const seen = { pages: {} };
let step = "sign in";
try {
  await page.goto(`${BASE}/`);
  for (const [field, value] of [["Email", EMAIL], ["Password", PASSWORD]]) await page.getByLabel(field).fill(value);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("video-card").first().waitFor();

  for (const [name, hash, path, loaded, act] of PAGES) {
    step = `the error state of ${name} (#/${hash})`;
    const started = Date.now();
    const main = typeof path === "string" ? (url) => url.pathname === path : path;
    let refused = 0;
    const refuse = (route) => (refused++, route.fulfill(problem));
    await page.route(main, refuse);
    await page.goto(`${BASE}/#/${hash}`);
    await page.reload(); // the page loads afresh (the library is where signing in left it)
    await act?.();
    await alert.getByRole("button", { name: "Try again" }).waitFor();
    const said = (await alert.textContent()).replace("Try again", "");
    await page.unroute(main, refuse);
    const answered = page.waitForResponse((r) => main(new URL(r.url())) && r.status() === 200);
    await alert.getByRole("button", { name: "Try again" }).click();
    await answered;
    await page.locator(loaded).first().waitFor();
    seen.pages[name] = { refused, said, alertsAfter: await alert.count(), ms: Date.now() - started };
  }

  step = "the quality menu";
  // every place the tabs are shown at, each frame, from the page's first frame on (the page must not move as the
  // stream loads: a click aimed at a tab lands on it)
  await page.evaluate(() => {
    window.tabsAt = [];
    const frame = () => {
      const tabs = document.querySelector('[role="tablist"]');
      const y = tabs && Math.round(tabs.getBoundingClientRect().y + scrollY);
      if (tabs && window.tabsAt.at(-1)?.y !== y) {
        const parts = [...document.querySelectorAll("main section > *, .player > *")].map((e) => `${e.className || e.tagName.toLowerCase()} ${Math.round(e.getBoundingClientRect().height)}`);
        window.tabsAt.push({ y, parts: parts.join(", ") });
      }
      if (!window.tabsDone) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  await page.goto(`${BASE}/#/video/${VIDEO_ID}`);
  // at half speed, here and for the spoken clip: a slow machine's captions job ends long before the clip would
  // (the rate is the element's default, which a new stream's load keeps)
  const halfSpeed = (v) => { v.muted = true; v.defaultPlaybackRate = v.playbackRate = 0.5; return v.play(); };
  await player.evaluate(halfSpeed);
  const quality = page.getByLabel("Quality");
  seen.qualityOptions = await quality.locator("option").allTextContents();
  const started = await advances(0, 0.3);
  const levelOf = (label) => quality.locator("option", { hasText: label }).getAttribute("value");
  const switchTo = async (label) => {
    await quality.selectOption({ label });
    const level = await levelOf(label);
    await until(([l, h]) => document.querySelector(".player")?.dataset.level === l && document.querySelector("video").videoHeight === h, [level, parseInt(label)]);
    return { label, level: Number(level), ...(await advances((await playing()).time, 0.5)) };
  };
  seen.switched = [await switchTo("240p"), await switchTo("360p")];
  seen.tabsAt = await page.evaluate(() => ((window.tabsDone = true), window.tabsAt));

  step = "an expired token: renewed by the player, which carries on where it was";
  const expired = tokens.at(-1);
  let refusedPlay = 0;
  const expire = (route) => (refusedPlay++, route.fulfill(expiredAnswer));
  const withExpired = (url) => url.pathname.startsWith("/play/") && url.searchParams.get("token") === expired;
  await page.route(withExpired, expire);
  const signedBefore = signed;
  // playing from here on: where does the renewed stream start?
  await player.evaluate((v) => { window.resumedAt = []; v.addEventListener("playing", () => window.resumedAt.push(v.currentTime)); });
  const before = await playing();
  await quality.selectOption({ label: "240p" }); // replaces what is buffered ahead: new requests, with the old token
  await until(() => window.resumedAt.length > 0);
  const renewed = await advances(before.time, 1);
  seen.renewed = {
    before, after: renewed, refused: refusedPlay, signs: signed - signedBefore, newToken: tokens.at(-1) !== expired,
    resumedAt: await page.evaluate(() => window.resumedAt[0]), alerts: await alert.count(),
    level: await page.locator(".player").getAttribute("data-level"), wanted: await levelOf("240p"),
  };
  await page.unroute(withExpired, expire);

  step = "a failure that persists: said, and Try again resumes";
  const refuseAll = (url) => url.pathname.startsWith("/play/");
  let refusedAll = 0;
  const deny = (route) => (refusedAll++, route.fulfill(expiredAnswer));
  await page.route(refuseAll, deny);
  const signedAgain = signed;
  const stuck = await playing();
  await quality.selectOption({ label: "360p" });
  await alert.getByRole("button", { name: "Try again" }).waitFor();
  seen.persisting = { said: (await alert.textContent()).replace("Try again", ""), signs: signed - signedAgain, refused: refusedAll };
  await page.unroute(refuseAll, deny);
  await alert.getByRole("button", { name: "Try again" }).click();
  const resumed = await advances(stuck.time, 1);
  seen.persisting = { ...seen.persisting, stuck, resumed, alerts: await alert.count(), level: await page.locator(".player").getAttribute("data-level"), wanted: await levelOf("360p") };

  step = "captions started while playing: the page reads the video again at each of the job's states, playback carries on";
  await player.evaluate((v) => { v.currentTime = 2; });
  const watching = await advances(2, 0.5);
  let reads = 0;
  const read = (r) => r.request().method() === "GET" && new URL(r.url()).pathname === `/api/v1/videos/${VIDEO_ID}` && reads++;
  page.on("response", read);
  await player.evaluate((v) => {
    window.media = { loads: 0, pauses: 0 }; // a new source starts a load; a restart pauses
    v.addEventListener("loadstart", () => window.media.loads++);
    v.addEventListener("pause", () => window.media.pauses++);
  });
  const signsBefore = signed;
  await page.getByRole("tab", { name: "Captions" }).click();
  await page.getByRole("button", { name: "Generate captions" }).click();
  const captions = await heard((j) => j.kind === "captions" && ["succeeded", "failed", "canceled"].includes(j.status));
  const ended = await playing();
  const after = await advances(ended.time, 1); // the page's last read (at the job's end) is in
  page.off("response", read);
  seen.keptPlaying = {
    watching, ended, after, reads, signs: signed - signsBefore, ...(await page.evaluate(() => window.media)),
    captions: captions.status, states: [...new Set(jobs.filter((j) => j.id === captions.id).map((j) => j.status))],
    captionMenu: await page.locator(".player label", { hasText: "Captions" }).locator("option").allTextContents(),
  };
  await player.evaluate((v) => v.pause());

  step = "copy the embed snippet without a clipboard";
  await page.evaluate(() => Object.defineProperty(navigator, "clipboard", { value: undefined, configurable: true }));
  await page.getByRole("tab", { name: "Playback" }).click();
  await page.getByRole("button", { name: "Make a signed link" }).click();
  await page.getByRole("button", { name: "Copy embed snippet" }).click();
  seen.copy = {
    note: await page.getByTestId("copy-note").textContent(),
    selected: await page.getByTestId("embed-snippet").evaluate((t) => document.activeElement === t && t.selectionStart === 0 && t.selectionEnd === t.value.length && t.value.startsWith("<iframe")),
  };

  step = "the Analysis tab asks for this video's analyses";
  const asked = page.waitForRequest((r) => new URL(r.url()).pathname === "/api/v1/analyses");
  await page.getByRole("tab", { name: "Analysis" }).click();
  seen.analysisQuery = Object.fromEntries(new URL((await asked).url()).searchParams);

  step = "a failed analysis (the clip's tone has no speech) is run again";
  const analysed = () => page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/api/v1/analyses");
  let answer = analysed();
  await page.getByRole("button", { name: "Analyse this video" }).click();
  const first = (await (await answer).json()).analysis.id;
  const state = (id) => page.locator(`[data-testid="analysis-state"][data-id="${id}"][data-state="failed"]`);
  await state(first).waitFor({ timeout: 60_000 });
  const failedText = (await state(first).textContent()).replace("Analyse again", "");
  answer = analysed();
  await page.getByRole("button", { name: "Analyse again" }).click();
  const second = await answer;
  const again = (await second.json()).analysis.id;
  await state(again).waitFor({ timeout: 60_000 });
  seen.analyseAgain = { failed: failedText, status: second.status(), first, again, button: await page.getByRole("button", { name: "Analyse again" }).count() };

  step = "a new caption track while playing: the stream is signed anew and carries on where it was";
  await page.goto(`${BASE}/#/video/${SPEECH_ID}`);
  await page.getByRole("heading", { name: "Spoken" }).waitFor();
  await until(() => document.querySelector("video").readyState >= 1); // its stream is attached
  await player.evaluate((v) => {
    window.media = { loads: 0, playingAt: [] }; // a new source starts a load; where it played from after each
    v.addEventListener("loadstart", () => window.media.loads++);
    v.addEventListener("playing", () => window.media.loads && window.media.playingAt.push(v.currentTime));
  });
  await player.evaluate(halfSpeed);
  const speaking = await advances(2, 0);
  const loadsBefore = await page.evaluate(() => window.media.loads);
  await page.getByRole("tab", { name: "Captions" }).click();
  await page.getByRole("button", { name: "Generate captions" }).click();
  const menu = page.locator(".player label", { hasText: "Captions" }).locator("select");
  await menu.waitFor({ timeout: 60_000 });
  // the menu comes with the new stream's playlist, a moment before the player has resumed in it
  await until(() => window.media.playingAt.length > 0 && !document.querySelector("video").paused, undefined, 30_000);
  const tracked = await playing();
  seen.newTrack = {
    speaking, tracked, after: await advances(tracked.time, 1), signs: signedSpeech,
    menu: await menu.locator("option").allTextContents(), ...(await page.evaluate(() => window.media)), loadsBefore,
  };

  step = "another caption track while a caption track is shown: the pick is kept in the new stream";
  await menu.selectOption({ label: "English" });
  const showing = () => player.evaluate((v) => [...v.textTracks].filter((t) => t.mode === "showing").map((t) => t.label));
  await until(() => [...document.querySelector("video").textTracks].some((t) => t.mode === "showing"));
  const shownBefore = await showing();
  await page.getByPlaceholder("Translate to, e.g. ko,en").fill("ko");
  await page.getByRole("button", { name: "Generate captions" }).click();
  await until(() => document.querySelectorAll(".player label select")[1]?.options.length === 3, undefined, 60_000);
  const picked = await playing();
  await advances(picked.time, 0.5);
  seen.keptTrack = {
    shownBefore, menu: await menu.locator("option").allTextContents(), chosen: await menu.evaluate((s) => s.selectedOptions[0].textContent),
    shown: await showing(), picked, after: await playing(), signs: signedSpeech, ...(await page.evaluate(() => window.media)),
  };

  seen.errors = pageErrors;
  console.log(JSON.stringify(seen));
} catch (e) {
  if (FAILED) await page.screenshot({ path: `${FAILED}/states-failed.png`, fullPage: true }).catch((s) => console.error(`no screenshot: ${s}`));
  const media = await page.evaluate(() => {
    const v = document.querySelector("video");
    if (!v) return "no video element";
    const ranges = [...Array(v.buffered.length).keys()].map((i) => [v.buffered.start(i), v.buffered.end(i)]);
    return { level: document.querySelector(".player")?.dataset.level, height: v.videoHeight, time: v.currentTime, paused: v.paused, readyState: v.readyState, networkState: v.networkState, buffered: ranges, error: v.error?.message };
  }).catch((x) => `unknown: ${x}`);
  console.error(`step "${step}" failed at ${page.url()}: ${e}\npage errors: ${JSON.stringify(pageErrors)}\nplayer: ${JSON.stringify(media)}\nlast stream answers: ${JSON.stringify(answers)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
