// A new user's first visit, in Debian's Chromium driven by playwright-core (no browser download):
// register, add a webhook (a receiver in this process), upload three clips with a progress bar, watch the job finish
// live, play, generate captions and pick them in the player, analyse, click a chapter and a highlight (the player
// seeks) and read the transcript, a thumbnail over the seek bar, the captions' quality report in words, create an API
// key, top up credits with the test payment (another tab's balance follows without a reload), build a ranking short
// from the clips (reorder, edit a title, the layout preview), render it with live stages and play and download it, a
// platform search's results sorted by likes and by views, a ranking short from it (ranked by the sort chosen) with N
// and the play order chosen, redeliver a webhook delivery, a batch of pasted URLs whose failed item is explained and
// retried, a batch from a CSV file canceled while it runs (its export: the file's URLs), and every page at 390 px wide
// without horizontal overflow; a screenshot of each
// page into SHOTS (docs/screenshots), and of every open page (failed.png, failed-tab.png, …) when a step failed into FAILED.
//
//   BASE=http://127.0.0.1:8080 VIDEO=clip.mp4 SHOTS=docs/screenshots FAILED=/tmp node web/tests/journey.mjs
// Prints one JSON line of what it measured; exits non-zero (with the failing step) otherwise.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

// the webhook receiver: every request it got (event id header and body), answered 204
const received = [];
// it also plays another site: GET /host answers a page holding the embed snippet (another origin: another port)
let hostHtml = "";
// and a video page that is gone (404), counting how often it was asked for (a batch item that fails, retried)
let goneHits = 0;
const receiver = createServer((req, res) => {
  if (req.url?.startsWith("/gone/")) {
    goneHits++;
    res.writeHead(404, { "Content-Type": "text/html" }).end("<!doctype html><title>Not found</title>");
    return;
  }
  if (req.method === "GET" && req.url === "/host") {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(hostHtml);
    return;
  }
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    received.push({ event: req.headers["reelforge-event-id"], signature: req.headers["reelforge-signature"], body });
    res.writeHead(204).end();
  });
});
await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;

const { BASE, VIDEO, SHOTS, FAILED, BATCH_URLS, MISSING_URL, CANCEL_URLS, SEARCH_QUERY } = process.env;
const goneUrl = `http://127.0.0.1:${receiver.address().port}/gone/${Date.now()}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--autoplay-policy=no-user-gesture-required"],
});
const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
// what each page's screenshot is called when a step fails (every open page is shot: a step may be in another tab)
const shotNames = new Map([[page, "failed"]]);
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
// Console errors, with the URL they name. An API answer of 4xx/5xx is not the page's fault (the library asks for
// a stream that does not exist yet: 404 = processing; the page shows an error state for the rest): those are
// reported apart. hls.js gives each caption <track> a `data:,WEBVTT` placeholder src that the CSP refuses; its cues
// are added from script, so the captions still show (checked below).
const apiErrors = [];
page.on("console", (m) => {
  if (m.type() !== "error" || /data:,WEBVTT/.test(m.text())) return;
  const url = m.location().url ?? "";
  (/\/(api\/v1|play)\//.test(url) ? apiErrors : errors).push(`${m.text()} ${url}`);
});
page.setDefaultTimeout(30_000);
const seen = {};
let step = "start";

// page.waitForFunction evaluates a string in the page, which the app's CSP (rightly) refuses: poll evaluate instead
async function until(fn, timeout = 30_000) {
  for (const end = Date.now() + timeout; Date.now() < end; await page.waitForTimeout(250)) {
    if (await page.evaluate(fn)) return;
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${fn}`);
}
// the reference is thousands of pixels long: its first screen says enough
const shot = (name) => SHOTS && name && page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: name !== "api-reference" });
async function visit(hash, text, name) {
  step = `open ${hash}`;
  await page.goto(`${BASE}/#/${hash}`);
  await page.getByText(text).first().waitFor();
  await until(() => !document.querySelector('[role="status"]')?.textContent?.startsWith("Loading"));
  await shot(name);
}

try {
  step = "register";
  await page.goto(`${BASE}/`);
  await shot("sign-in");
  await page.getByText("No account? Create one").click();
  const email = `web-${Date.now()}@example.com`;
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByText("No videos yet").waitFor();
  await shot("library-empty");

  step = "add a webhook";
  await visit("developers", "API keys", "developers-empty");
  await page.getByLabel("Endpoint URL").fill(hookUrl);
  await page.getByRole("button", { name: "Add webhook" }).click();
  await page.locator('[data-testid="webhook-secret"]').waitFor();
  await page.locator('[data-testid="webhook"]').filter({ hasText: hookUrl }).waitFor();

  step = "another tab: signed in, on the library";
  // its own context: the session lives in sessionStorage (per tab), so the other tab signs in by itself
  const tab = await (await browser.newContext({ viewport: { width: 1200, height: 860 } })).newPage();
  shotNames.set(tab, "failed-tab");
  tab.on("pageerror", (e) => errors.push(`tab 2: ${e}`));
  await tab.goto(`${BASE}/`);
  await tab.getByLabel("Email").fill(email);
  await tab.getByLabel("Password").fill("correct horse battery");
  await tab.getByRole("button", { name: "Sign in" }).click();
  await tab.getByText("No videos yet").waitFor();
  // a reload would lose this mark: what the tab shows from here on comes over the WebSocket
  await tab.evaluate(() => (window.liveMark = true));
  const unreloaded = () => tab.evaluate(() => window.liveMark === true);

  step = "upload";
  await page.goto(`${BASE}/#/add`);
  // the bar may come and go within one frame for a small file: record that it was shown
  await page.evaluate(() => {
    new MutationObserver(() => {
      if (document.querySelector('[data-testid="upload-progress"]')) window.sawProgress = true;
    }).observe(document.body, { subtree: true, childList: true });
  });
  await page.locator('input[name="file"]').setInputFiles(VIDEO);
  await page.locator('input[name="title"]').first().fill("Browser upload");
  await shot("add");
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await page.waitForURL(/#\/video\//);
  seen.progressBar = await page.evaluate(() => window.sawProgress === true);
  const videoId = page.url().split("/").pop();
  step = "the upload appears live in the other tab's library";
  await tab.locator('[data-testid="video-card"]').filter({ hasText: "Browser upload" }).waitFor();
  seen.libraryLive = await unreloaded();
  step = "the other tab's jobs page";
  await tab.evaluate(() => (location.hash = "#/jobs"));
  await tab.getByRole("heading", { name: "Jobs" }).waitFor();
  // two more clips for the ranking short (three at least)
  let secondId;
  for (const title of ["Second clip", "Third clip"]) {
    step = `upload ${title}`;
    await page.goto(`${BASE}/#/add`);
    await page.locator('input[name="file"]').setInputFiles(VIDEO);
    await page.locator('input[name="title"]').first().fill(title);
    await page.getByRole("button", { name: "Upload", exact: true }).click();
    await page.waitForURL((u) => /#\/video\//.test(u.hash) && !u.hash.endsWith(videoId));
    if (title === "Second clip") secondId = page.url().split("/").pop();
  }

  step = "watch a transcode live on the jobs page";
  // the other tab has shown the jobs page since before these two uploads: their transcodes cannot have ended yet
  const unfinished = tab.locator('[data-testid="job"][data-status="queued"], [data-testid="job"][data-status="running"]').filter({ hasText: "transcode" }).first();
  await unfinished.waitFor({ timeout: 60_000 });
  const watched = await unfinished.getAttribute("data-id");
  seen.jobWatched = { firstSeen: await unfinished.getAttribute("data-status") };
  await tab.locator(`[data-testid="job"][data-id="${watched}"][data-status="succeeded"]`).waitFor({ timeout: 180_000 });
  seen.jobWatched.status = "succeeded";
  seen.jobWatched.live = await unreloaded();
  const doneRow = tab.locator(`[data-testid="job"][data-id="${watched}"]`);
  seen.jobWatched.percent = (await doneRow.locator('[data-testid="job-percent"]').textContent())?.trim();
  seen.jobWatched.bar = await doneRow.locator("progress").evaluate((b) => b.value / b.max);
  if (SHOTS) await tab.screenshot({ path: `${SHOTS}/jobs.png`, fullPage: true });

  step = "play";
  await page.goto(`${BASE}/#/video/${videoId}`);
  const player = page.locator('[data-testid="player"]');
  await player.waitFor({ timeout: 60_000 });
  await player.evaluate((v) => { v.muted = true; return v.play(); });
  await until(() => { const v = document.querySelector("video"); return v && v.readyState >= 2 && v.currentTime > 0.5; }, 60_000);
  seen.play = await player.evaluate((v) => ({ readyState: v.readyState, currentTime: v.currentTime, mse: v.src.startsWith("blob:") }));
  // the video page says its status in words, as the Library does (the server's word stays in data-status)
  const videoBadge = page.locator("section .badge[data-status]").first();
  seen.videoBadge = { text: (await videoBadge.textContent())?.trim(), status: await videoBadge.getAttribute("data-status") };
  await player.evaluate((v) => v.pause());
  const bar = page.locator(".seekbar:has(input)"); // its thumbnails loaded (an empty bar keeps their room till then)
  const box = await bar.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const thumb = page.locator('[data-testid="seek-thumb"]');
  await thumb.waitFor();
  seen.seekThumbnail = await thumb.evaluate((el) => getComputedStyle(el).backgroundImage.includes("sprite"));
  await shot("video");
  await page.mouse.move(0, 0);
  await page.getByRole("tab", { name: "Playback" }).click();
  await page.getByRole("button", { name: "Make a signed link" }).click();
  seen.signedLink = await page.locator('[data-testid="signed-link"]').inputValue();
  await shot("video-playback");

  step = "the embed snippet plays in another site's page";
  const snippet = await page.locator('[data-testid="embed-snippet"]').inputValue();
  hostHtml = `<!doctype html><title>Another site</title>${snippet}`;
  const host = await browser.newPage();
  shotNames.set(host, "failed-embed-host");
  await host.goto(hookUrl.replace("/hook", "/host"));
  const embedded = host.frameLocator("iframe").locator('[data-testid="embed-video"]');
  await embedded.waitFor();
  await embedded.evaluate((v) => { v.muted = true; return v.play(); });
  for (const end = Date.now() + 60_000; Date.now() < end; await host.waitForTimeout(250)) {
    if (await embedded.evaluate((v) => v.readyState >= 2 && v.currentTime > 0.3)) break;
  }
  seen.embed = { iframe: snippet.startsWith("<iframe") && snippet.includes(`/embed/${videoId}?token=`), ...(await embedded.evaluate((v) => ({ readyState: v.readyState, currentTime: v.currentTime, mse: v.src.startsWith("blob:") }))) };
  await host.close();

  step = "generate captions and see them in the player";
  await page.getByRole("tab", { name: "Captions" }).click();
  await page.getByPlaceholder("Language (auto)").fill("en");
  await page.getByRole("button", { name: "Generate captions" }).click();
  // the page re-reads the stream when the captions job ends: the new track comes with the master playlist
  const captions = page.getByLabel("Captions");
  await captions.locator("option").nth(1).waitFor({ state: "attached", timeout: 300_000 });
  await captions.selectOption({ index: 1 });
  await player.evaluate((v) => { v.muted = true; v.currentTime = 0.5; return v.play(); });
  await until(() => [...document.querySelector("video").textTracks].some((t) => t.mode === "showing" && t.cues && t.cues.length > 0), 60_000);
  seen.captionTrack = await player.evaluate((v) => [...v.textTracks].find((t) => t.mode === "showing")?.language);
  await player.evaluate((v) => v.pause());
  await shot("video-captions");
  seen.trackListed = await page.locator('[data-testid="track"]').count();
  step = "the captions' quality report in plain words";
  const report = page.locator('[data-testid="quality-report"]');
  await report.waitFor();
  seen.quality = {
    cues: Number(await page.locator('[data-testid="track"]').first().locator("td").nth(2).textContent()),
    problems: Number(await report.getAttribute("data-problems")),
    lines: (await report.locator("ul.quality > li").allTextContents()).map((t) => t.trim()),
    summary: (await report.locator("p").first().textContent())?.trim(),
  };

  step = "edit a cue's text and time: a new version; download SRT and VTT";
  const track = page.locator('[data-testid="track"]').first();
  const version = Number(await track.getAttribute("data-version"));
  await track.getByRole("button", { name: "Edit" }).click();
  const cueText = page.getByLabel("Text").first();
  await cueText.waitFor();
  await cueText.fill("Edited in the browser");
  const cueStart = page.getByLabel("Start").first();
  const newStart = Math.round((Number(await cueStart.inputValue()) + 0.25) * 100) / 100;
  await cueStart.fill(String(newStart));
  await page.getByRole("button", { name: "Save cues" }).click();
  await page.locator(`[data-testid="track"][data-version="${version + 1}"]`).first().waitFor();
  const fetched = {};
  for (const ext of ["SRT", "VTT"]) {
    const [file] = await Promise.all([page.waitForEvent("download"), page.locator('[data-testid="track"]').first().getByRole("button", { name: ext }).click()]);
    fetched[ext] = { name: file.suggestedFilename(), text: await readFile(await file.path(), "utf8") };
  }
  seen.cueEdit = { version, newVersion: version + 1, newStart, srt: fetched.SRT, vtt: fetched.VTT };

  step = "analyse, click a chapter and read the transcript";
  await page.getByRole("tab", { name: "Analysis" }).click();
  await page.getByRole("button", { name: "Analyse this video" }).click();
  // a chapter (not a highlight): the last one, so the seek is not to 0
  const chapter = page.locator('[data-testid="chapter"]').last();
  await chapter.waitFor({ timeout: 180_000 });
  const start = Number(await chapter.getAttribute("data-start"));
  await player.evaluate((v) => { v.pause(); v.currentTime = 0; });
  await until(() => !document.querySelector("video").seeking);
  // where each seek landed, as it landed (the click also plays: a later read would be seconds on)
  await player.evaluate((v) => { window.seekedTo = []; v.addEventListener("seeked", () => window.seekedTo.push(v.currentTime)); });
  await chapter.click();
  await until(() => window.seekedTo.some((t) => t > 0), 30_000);
  seen.chapter = { start, currentTime: await page.evaluate(() => window.seekedTo.find((t) => t > 0)), chapters: await page.locator('[data-testid="chapter"]').count() };
  step = "click a highlight: the player seeks to its start";
  const highlight = page.locator('[data-testid="highlight"]').last();
  const hStart = Number(await highlight.getAttribute("data-start"));
  // from a place seconds away from it, so that the seek shows
  const from = hStart > 3 ? 0 : hStart + 6;
  await player.evaluate((v, at) => { v.pause(); v.currentTime = window.seekFrom = at; }, from);
  await until(() => !document.querySelector("video").seeking);
  await page.evaluate(() => { window.seekedTo = []; });
  await highlight.click();
  const landed = () => window.seekedTo.find((t) => Math.abs(t - window.seekFrom) > 1);
  await until(() => window.seekedTo.some((t) => Math.abs(t - window.seekFrom) > 1));
  seen.highlight = { start: hStart, from, currentTime: await page.evaluate(landed), highlights: await page.locator('[data-testid="highlight"]').count() };
  await player.evaluate((v) => v.pause());
  await page.locator('[data-testid="transcript"] li').first().waitFor();
  seen.transcript = await page.locator('[data-testid="transcript"] li').allTextContents();
  await shot("video-analysis");

  step = "library";
  await visit("library", "Browser upload", "library");
  // each card asks for its stream's status (a busy minute may make it wait out the rate limit)
  await until(() => ![...document.querySelectorAll('[data-testid="video-card"] .badge')].some((b) => b.textContent === "…"), 60_000);
  seen.libraryStatus = await page.locator('[data-testid="video-card"] .badge').first().getAttribute("data-status");

  step = "create an API key";
  await visit("developers", "API keys", "developers");
  await page.getByPlaceholder("Name, e.g. laptop CLI").fill("browser test");
  await page.getByRole("button", { name: "Create key" }).click();
  seen.apiKey = (await page.locator('[data-testid="new-key"]').textContent())?.slice(0, 6);
  await page.locator('[data-testid="key"]').filter({ hasText: "browser test" }).waitFor();
  step = "revoke the API key";
  page.once("dialog", (d) => d.accept());
  await page.locator('[data-testid="key"]').filter({ hasText: "browser test" }).getByRole("button", { name: "Revoke" }).click();
  await page.locator('[data-testid="key"]').filter({ hasText: "browser test" }).waitFor({ state: "detached" });
  seen.keyRevoked = true;

  step = "the other tab opens the credits page (no reload)";
  await tab.evaluate(() => (location.hash = "#/credits"));
  const tabAvailable = tab.locator('[data-testid="available"]');
  await tabAvailable.waitFor();
  const tabBefore = Number(await tabAvailable.textContent());

  step = "top up credits with the test payment";
  await visit("credits", "Available", "credits");
  const available = page.locator('[data-testid="available"]');
  seen.credits = Number(await available.textContent());
  await page.evaluate((n) => (window.creditsBefore = n), seen.credits);
  const amount = Number(await page.locator('input[name="amount"]').inputValue());
  await page.getByRole("button", { name: "Create order" }).click();
  await page.locator('[data-testid="order"][data-status="pending"]').waitFor();
  await page.getByRole("button", { name: "Pay (test)" }).click();
  await page.locator('[data-testid="order"][data-status="paid"]').waitFor();
  await until(() => !document.querySelector('[role="status"]')?.textContent?.startsWith("Loading"));
  await page.locator("td").filter({ hasText: /^topup/ }).first().waitFor();
  // the balance and the ledger are re-read side by side: the ledger may come first (a wrong balance fails below)
  await until(() => document.querySelector('[data-testid="available"]')?.textContent !== String(window.creditsBefore), 15_000).catch(() => null);
  seen.topup = { amount, before: seen.credits, after: Number(await available.textContent()) };
  step = "the other tab shows the new balance live";
  // that tab did nothing: only the gateway's push of the credited payment can change what it shows
  for (const end = Date.now() + 15_000; Date.now() < end; await tab.waitForTimeout(250)) {
    if (Number(await tabAvailable.textContent()) !== tabBefore) break;
  }
  seen.topupLive = { before: tabBefore, after: Number(await tabAvailable.textContent()), live: await unreloaded() };
  await shot("credits");

  step = "build a ranking short from the three clips";
  await visit("rankings", "New ranking short", "rankings");
  await page.getByLabel("Title", { exact: true }).fill("Top 3 clips");
  await page.locator('input[name="clip"]').fill("2");
  for (const title of ["Browser upload", "Second clip", "Third clip"]) {
    await page.locator(".picks label").filter({ hasText: title }).locator("input").check();
  }
  await page.getByRole("button", { name: "Create ranking" }).click();
  await page.waitForURL(/#\/rankings\/.+/);
  const projectId = page.url().split("/").pop();
  const items = page.locator('[data-testid="rank-item"]');
  await items.nth(2).waitFor();
  await page.getByLabel("Title of #1").fill("The best one");
  // a real drag (mouse down, move, up): #1 dropped on #2 becomes #2
  await items.nth(0).locator(".grip").dragTo(items.nth(1));
  await page.getByLabel("Title of #2").waitFor();
  // trim #3: a later start and an earlier end
  const trim = { start: Math.round((Number(await page.getByLabel("Start of #3").inputValue()) + 0.3) * 10) / 10 };
  trim.end = Math.round((Number(await page.getByLabel("End of #3").inputValue()) - 0.2) * 10) / 10;
  await page.getByLabel("Start of #3").fill(String(trim.start));
  await page.getByLabel("End of #3").fill(String(trim.end));
  await page.getByRole("button", { name: "Save changes" }).click();
  await until(() => !document.body.textContent.includes("unsaved changes") && document.querySelectorAll('[data-testid="rank-item"]').length === 3);
  await page.getByLabel("Title of #2").waitFor();
  seen.rankTitles = await items.evaluateAll((els) => els.map((el) => el.querySelector("input").value));
  // saved: the page shows the project as the server now has it
  seen.trim = { asked: trim, saved: { start: Number(await page.getByLabel("Start of #3").inputValue()), end: Number(await page.getByLabel("End of #3").inputValue()) } };
  await page.getByLabel("Title of #2").click();
  seen.preview = await page.locator('[data-testid="layout-preview"] .title-mock').textContent();
  await shot("ranking-editor");

  step = "render the ranking short with live progress";
  await page.getByRole("button", { name: "Render", exact: true }).click();
  const rendered = page.locator('[data-testid="render"]').first();
  await rendered.waitFor();
  await page.locator('[data-testid="render"][data-status="running"]').first().waitFor({ timeout: 300_000 }).catch(() => null);
  await shot("ranking-rendering");
  await page.locator('[data-testid="render"][data-status="succeeded"]').first().waitFor({ timeout: 420_000 });
  seen.renderStages = (await rendered.getAttribute("data-stages")).split(",").filter(Boolean);
  const short = page.locator('[data-testid="render-video"]');
  await short.evaluate((v) => { v.muted = true; return v.play(); });
  await until(() => { const v = document.querySelector('[data-testid="render-video"]'); return v.readyState >= 2 && v.currentTime > 0.3; }, 60_000);
  seen.renderPlay = await short.evaluate((v) => ({ readyState: v.readyState, currentTime: v.currentTime, width: v.videoWidth, height: v.videoHeight }));
  await short.evaluate((v) => v.pause());
  const href = await page.locator('[data-testid="render-download"]').getAttribute("href");
  seen.renderDownload = await page.evaluate(async (u) => {
    const r = await fetch(u);
    return { status: r.status, type: r.headers.get("content-type"), bytes: (await r.arrayBuffer()).byteLength };
  }, href);
  await shot("ranking-render");

  step = "a platform search";
  await page.goto(`${BASE}/#/add`);
  await page.getByPlaceholder("What to look for").fill(SEARCH_QUERY);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  step = "sort the search's results by likes, then views: the order shown and the ranking link follow";
  const sortBy = page.getByLabel("Sort by");
  await sortBy.waitFor({ timeout: 60_000 });
  const makeRanking = page.getByRole("link", { name: "Make a ranking short…" });
  const results = async () => ({
    href: await makeRanking.getAttribute("href"),
    shown: await page.locator("ul.results > li").evaluateAll((els) => els.map((el) => ({ title: el.querySelector("a").textContent, counts: el.querySelector("small").textContent }))),
  });
  seen.searchSort = { sorted: [] };
  for (const label of ["likes", "views", "likes"]) {
    await sortBy.selectOption({ label });
    for (const end = Date.now() + 5_000; !(await makeRanking.getAttribute("href")).endsWith(`/${label}`) && Date.now() < end; ) await page.waitForTimeout(250);
    seen.searchSort.sorted.push({ by: label, ...(await results()) });
  }
  step = "a ranking short from the search sorted by likes: N and the play order chosen";
  await makeRanking.click();
  await page.waitForURL(/#\/rankings\/search\//);
  // what ranks came with the link: this page is not told again
  seen.searchSort.rankBy = await page.getByLabel("Rank by").inputValue();
  await page.getByLabel("How many").fill("4");
  await page.getByLabel("Play order").selectOption("top_down");
  const picked = page.locator('[data-testid="search-picks"] li');
  await until(() => document.querySelectorAll('[data-testid="search-picks"] li').length === 4);
  const picks = await picked.evaluateAll((els) => els.map((el) => el.firstChild.textContent));
  await page.getByRole("button", { name: "Create the Top 4" }).click();
  await page.waitForURL((u) => /^#\/rankings\/[0-9a-f-]{36}$/.test(u.hash));
  await items.nth(3).waitFor();
  seen.searchRank = {
    picks,
    titles: await items.evaluateAll((els) => els.map((el) => el.querySelector("input").value)),
    heading: (await page.locator("section > p.muted").first().textContent()).trim(),
  };

  step = "redeliver a webhook delivery";
  await visit("developers", "API keys", "developers");
  await page.getByRole("button", { name: "Deliveries" }).first().click();
  const delivered = page.locator('[data-testid="delivery"][data-status="delivered"]').first();
  await delivered.waitFor({ timeout: 60_000 });
  // this event's deliveries only: the user's other videos (the rendered short) may send theirs meanwhile
  const event = await delivered.getAttribute("data-event");
  const ofEvent = () => received.filter((r) => r.event === event).length;
  const before = ofEvent();
  const mine = page.locator(`[data-testid="delivery"][data-event="${event}"]`);
  await mine.getByRole("button", { name: "Redeliver" }).click();
  await mine.and(page.locator('[data-attempts="2"][data-status="delivered"]')).waitFor({ timeout: 60_000 });
  seen.redelivered = { event, before, after: ofEvent() };
  await shot("developers-webhooks");
  step = "library: search, rename, delete";
  await visit("library", "Third clip");
  const cards = page.locator('[data-testid="video-card"]');
  await page.getByLabel("Search titles").fill("second");
  await until(() => document.querySelectorAll('[data-testid="video-card"]').length === 1);
  page.once("dialog", (d) => d.accept("Second clip, renamed"));
  await cards.first().getByRole("button", { name: "Rename" }).click();
  await cards.filter({ hasText: "Second clip, renamed" }).waitFor();
  await page.getByLabel("Search titles").fill("");
  const third = cards.filter({ hasText: "Third clip" });
  page.once("dialog", (d) => d.accept());
  await third.getByRole("button", { name: "Delete" }).click();
  await third.waitFor({ state: "detached" });
  // after a reload too: the server renamed and deleted
  await page.reload();
  await cards.filter({ hasText: "Browser upload" }).waitFor();
  seen.library = { afterReload: (await cards.locator(".title").allTextContents()).sort() };

  step = "a failed import: its typed error in plain words on the jobs page";
  await page.goto(`${BASE}/#/add`);
  await page.getByPlaceholder("https://…").fill(MISSING_URL);
  await page.getByRole("button", { name: "Import", exact: true }).click();
  await page.waitForURL(/#\/jobs/);
  const failedImport = page.locator('[data-testid="job"][data-status="failed"]').filter({ hasText: "import" }).first();
  await failedImport.waitFor({ timeout: 120_000 });
  seen.importError = await failedImport.locator(".error").textContent();

  step = "cancel a long job";
  await page.goto(`${BASE}/#/video/${secondId}`);
  await page.getByRole("tab", { name: "Captions" }).click();
  await page.getByPlaceholder("Language (auto)").fill("en");
  await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith("/captions")),
    page.getByRole("button", { name: "Generate captions" }).click(),
  ]);
  await page.goto(`${BASE}/#/jobs`);
  const longJob = page.locator('[data-testid="job"][data-status="queued"], [data-testid="job"][data-status="running"]').filter({ hasText: "captions" }).first();
  await longJob.waitFor();
  const longId = await longJob.getAttribute("data-id");
  seen.canceled = { firstSeen: await longJob.getAttribute("data-status") };
  await longJob.getByRole("button", { name: "Cancel" }).click();
  await page.locator(`[data-testid="job"][data-id="${longId}"][data-status="canceled"]`).waitFor({ timeout: 120_000 });
  seen.canceled.status = "canceled";

  step = "the API reference: parameters and schemas; a failed load is an error";
  await visit("reference", "/api/v1/videos", "api-reference");
  const videosOp = page.locator('[data-testid="operation"]').filter({ hasText: "PATCH /api/v1/videos/{video_id}" }).first();
  await videosOp.getByText("Parameters and schemas").click();
  seen.reference = { schema: await videosOp.locator("pre.schema").first().textContent(), params: await videosOp.locator("table.params td code").allTextContents() };
  await page.route("**/api/v1/openapi.json", (r) => r.fulfill({ status: 503, body: "unavailable" }));
  await page.reload(); // the same hash: goto would not load the page again
  seen.reference.error = await page.getByRole("alert").textContent();
  await page.unroute("**/api/v1/openapi.json");

  step = "a batch of pasted URLs, followed live";
  await visit("batches", "New batch");
  // the platform's pages, and one that is gone (this script's 404): a failure to explain and retry
  const urls = [...BATCH_URLS.split("\n").filter(Boolean), goneUrl];
  await page.locator('textarea[name="urls"]').fill(["url", ...urls].join("\n")); // a CSV's header row is skipped
  await page.evaluate(() => {
    window.liveMark = true;
    window.batchSeen = { counts: [], pace: [], states: [] };
    new MutationObserver(() => {
      const batch = document.querySelector('[data-testid="batch"]');
      for (const [key, text] of [
        ["counts", batch?.querySelector('[data-testid="batch-counts"]')?.textContent],
        ["pace", batch && `${batch.dataset.state}: ${batch.querySelector('[data-testid="batch-pace"]')?.textContent}`],
        ["states", batch?.dataset.state],
      ]) {
        const list = window.batchSeen[key];
        if (text && list[list.length - 1] !== text) list.push(text);
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await page.getByRole("button", { name: "Analyse all" }).click();
  const batch = page.locator('[data-testid="batch"]').first();
  await batch.waitFor();
  seen.batchTotal = Number((await batch.textContent()).match(/(\d+)\/(\d+) items/)[2]);
  await batch.getByRole("button", { name: "Pause" }).click();
  await page.locator('[data-testid="batch"][data-state="paused"]').waitFor();
  await batch.getByRole("button", { name: "Resume" }).click();
  await page.locator('[data-testid="batch"][data-state="running"], [data-testid="batch"][data-state="done"]').first().waitFor();
  await shot("batches");
  await page.locator('[data-testid="batch"][data-state="done"]').waitFor({ timeout: 300_000 });
  step = "the batch's failure in plain words; retry it";
  const failure = batch.locator('[data-testid="batch-failure"]');
  await failure.waitFor();
  const failedOnce = { text: (await failure.textContent()).trim(), hits: goneHits };
  await page.evaluate(() => (window.retryAt = window.batchSeen.states.length));
  await batch.getByRole("button", { name: "Retry failed" }).click();
  // requeued: the batch runs again, and its item fails again (the page is still gone) with the same words
  await until(() => {
    const b = document.querySelector('[data-testid="batch"]');
    return window.batchSeen.states.slice(window.retryAt).includes("running") && b.dataset.state === "done" && b.querySelector('[data-testid="batch-failure"]');
  }, 120_000);
  const [file] = await Promise.all([page.waitForEvent("download"), batch.getByRole("button", { name: "Export" }).click()]);
  const exported = (await readFile(await file.path(), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const batchSeen = await page.evaluate(() => window.batchSeen);
  seen.batch = {
    ...batchSeen,
    live: await page.evaluate(() => window.liveMark === true),
    exported: exported.map((r) => ({ url: r.url, state: r.state })),
    urls,
    gone: goneUrl,
    failure: failedOnce,
    retried: { text: (await failure.textContent()).trim(), hits: goneHits },
  };

  step = "cancel a running batch";
  // this one from a CSV file (a header row, a second column): the first column of its rows are the items
  const cancelUrls = CANCEL_URLS.split("\n").filter(Boolean);
  const csv = ["url,title", ...cancelUrls.map((u, i) => `${u},Canceled talk ${i}`)].join("\n");
  await page.getByLabel("or a CSV file").setInputFiles({ name: "cancel.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await page.getByRole("button", { name: "Analyse all" }).click();
  const running = page.locator('[data-testid="batch"][data-state="running"]').first();
  await running.waitFor();
  const canceledId = await running.getAttribute("data-id");
  page.once("dialog", (d) => d.accept());
  await running.getByRole("button", { name: "Cancel" }).click();
  const canceled = page.locator(`[data-testid="batch"][data-id="${canceledId}"]`);
  await page.locator(`[data-testid="batch"][data-id="${canceledId}"][data-state="canceled"]`).waitFor({ timeout: 60_000 });
  const [canceledFile] = await Promise.all([page.waitForEvent("download"), canceled.getByRole("button", { name: "Export" }).click()]);
  seen.batchCanceled = {
    total: Number((await canceled.textContent()).match(/(\d+)\/(\d+) items/)[2]),
    exported: (await readFile(await canceledFile.path(), "utf8")).split("\n").filter(Boolean).map((l) => JSON.parse(l).url),
    state: await canceled.getAttribute("data-state"),
    buttons: await canceled.getByRole("button").allTextContents(),
    live: await page.evaluate(() => window.liveMark === true),
  };

  step = "every page at 390 px wide";
  await page.setViewportSize({ width: 390, height: 844 });
  const mobile = [
    ["library", "Browser upload", "library-390px"],
    ["add", "Upload a file"],
    ["jobs", "transcode"],
    [`video/${videoId}`, "Browser upload", "video-390px"],
    ["rankings", "New ranking short"],
    [`rankings/${projectId}`, "Renders", "ranking-390px"],
    ["batches", "New batch"],
    ["credits", "Available"],
    ["developers", "API keys"],
    ["reference", "/api/v1/videos"],
  ];
  seen.overflowAt390 = [];
  for (const [hash, text, name] of mobile) {
    step = `open ${hash} at 390 px`;
    await page.goto(`${BASE}/#/${hash}`);
    await page.getByText(text).first().waitFor();
    await until(() => !document.querySelector('[role="status"]')?.textContent?.startsWith("Loading"));
    if (name) await shot(name);
    const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
    if (width > 390) seen.overflowAt390.push(`${hash}: ${width}px`);
  }
  step = "sign out; the sign-in page at 390 px";
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("No account? Create one").waitFor();
  const signIn = await page.evaluate(() => document.scrollingElement.scrollWidth);
  if (signIn > 390) seen.overflowAt390.push(`sign-in: ${signIn}px`);
  seen.pagesAt390 = mobile.length + 1;
  seen.errors = errors;
  seen.apiErrors = apiErrors;
  console.log(JSON.stringify(seen));
} catch (e) {
  const open = browser.contexts().flatMap((c) => c.pages());
  for (const [i, p] of (FAILED ? open : []).entries()) {
    const path = `${FAILED}/${shotNames.get(p) ?? `failed-page-${i + 1}`}.png`;
    await p.screenshot({ path, fullPage: true }).then(() => console.error(`screenshot of ${p.url()}: ${path}`), (s) => console.error(`no screenshot of ${p.url()}: ${s}`));
  }
  console.error(`step "${step}" failed at ${page.url()}: ${e}\npage errors: ${JSON.stringify(errors)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  receiver.close();
}
