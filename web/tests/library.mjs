// The Library's server-side search and "Load more", in Debian's Chromium driven by playwright-core: a user with
// eight videos (uploaded by the test: "Harbour at dawn" first, then "Street clip 1".."Street clip 7") signs in,
// picks six videos a page (remembered after a reload), searches for a title that is not on the loaded page, pages
// through a search with "Load more", searches for "%" (a literal, not a wildcard) and pages the whole library.
// The API requests of a page load are counted (page.on("request")): a page of cards asks for its streams' states
// in one request, however many cards it has (the test waits for the transcodes to end first, so no live update
// adds requests while they are counted). Then the Jobs page (its eight transcodes): six a page, "Load more" for the
// other two; the Developers page offers a read-only API key first. Then the Ranking page's picker: it searches the same library (six a page,
// "Load more"), keeps what was ticked across searches in the order ticked, and the project made from it previews
// render's own layout.
//
//   BASE=http://127.0.0.1:8080 EMAIL=… PASSWORD=… SHOTS=var/web-test/screenshots FAILED=/tmp node web/tests/library.mjs
// Prints one JSON line of what it saw; exits non-zero (with the failing step) otherwise.
import { chromium } from "playwright-core";

const { BASE, EMAIL, PASSWORD, SHOTS, FAILED } = process.env;
const chromiumArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs });
const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
page.setDefaultTimeout(20_000);
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
const apiCalls = [];
page.on("request", (r) => {
  const url = new URL(r.url());
  if (url.pathname.startsWith("/api/")) apiCalls.push(`${r.method()} ${url.pathname}`);
});

const cards = page.locator('[data-testid="video-card"]');
const card = (title) => cards.filter({ has: page.locator(".title", { hasText: new RegExp(`^${title}$`) }) });
const titles = () => cards.locator(".title").allTextContents();
const loadMore = page.getByRole("button", { name: "Load more" });
const search = page.getByLabel("Search titles");
/** Type ``text`` into the search box and wait until ``sign`` (a locator only the new answer shows) is visible. */
async function searchFor(text, sign) {
  await search.fill(text);
  await sign.waitFor();
  await page.getByTestId("library-searching").waitFor({ state: "detached" });
  return titles();
}

/** Every card's status in words (each shows "…" until its page's states are in). */
async function statuses() {
  for (const badge of await cards.locator(".badge").all()) await badge.filter({ hasNotText: "…" }).waitFor();
  return cards.locator(".badge").allTextContents();
}
/** The API requests made from ``act`` until every card shows its status. */
async function requestsOf(act) {
  const from = apiCalls.length;
  await act();
  await statuses();
  return apiCalls.slice(from);
}

const seen = {};
let step = "sign in";
try {
  await page.goto(`${BASE}/`);
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill(PASSWORD);
  seen.signInRequests = await requestsOf(async () => {
    await page.getByRole("button", { name: "Sign in" }).click();
    await card("Harbour at dawn").waitFor();
  });
  seen.firstVisit = await titles();
  // the poster each card shows is the signed one the states answered: it loads
  const poster = cards.first().locator(".poster img");
  await poster.waitFor();
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await poster.elementHandle());
  seen.posterSrc = await poster.getAttribute("src");

  step = "six a page, remembered";
  await page.getByLabel("Videos per page").selectOption("6");
  await card("Harbour at dawn").waitFor({ state: "detached" });
  seen.sixAPage = await titles();
  seen.moreAfterSix = await loadMore.isVisible();
  seen.reloadRequests = await requestsOf(async () => {
    await page.reload();
    await card("Street clip 7").waitFor();
  });
  seen.keptPerPage = await page.getByLabel("Videos per page").inputValue();
  seen.afterReload = await titles();

  step = "search finds a title that is not on the loaded page";
  seen.harbour = await searchFor("HARBOUR", card("Harbour at dawn"));
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/library-search.png`, fullPage: true });

  step = "Load more continues a search";
  seen.streetFirst = await searchFor("street CLIP", card("Street clip 7"));
  seen.moreInSearch = await loadMore.isVisible();
  await loadMore.click();
  await card("Street clip 1").waitFor();
  seen.streetAll = await titles();
  seen.moreAfterAll = await loadMore.count();

  step = "a % is a character, not a wildcard";
  await search.fill("%");
  await page.getByText("No video matches “%”.").waitFor();
  seen.percent = await titles();

  step = "the whole library, page by page";
  seen.everyFirst = await searchFor("", card("Street clip 7"));
  await statuses();
  seen.loadMoreRequests = await requestsOf(async () => {
    await loadMore.click();
    await card("Harbour at dawn").waitFor();
  });
  seen.everyAll = await titles();

  step = "the status in words";
  seen.badges = await statuses();

  step = "the jobs page pages too: six a page, then Load more";
  await page.getByRole("link", { name: "Jobs", exact: true }).click();
  const jobs = page.locator('[data-testid="job"]');
  const jobIds = () => jobs.evaluateAll((els) => els.map((el) => el.dataset.id));
  await jobs.first().waitFor();
  seen.jobsFirst = await jobIds();
  await page.getByLabel("Jobs per page").selectOption("6");
  await jobs.nth(6).waitFor({ state: "detached" });
  seen.jobsSix = await jobIds();
  const jobsMore = page.getByRole("button", { name: "Load more" });
  seen.jobsMore = await jobsMore.isVisible();
  await jobsMore.click();
  await jobs.nth(6).waitFor();
  seen.jobsAll = await jobIds();
  seen.jobsMoreAfterAll = await jobsMore.count();

  step = "a new API key is read-only unless full is chosen";
  await page.getByRole("link", { name: "Developers", exact: true }).click();
  seen.keyScope = await page.getByLabel("Scope").inputValue();

  step = "the ranking picker searches the library, six a page, and keeps the picks' order across searches";
  await page.getByRole("link", { name: "Ranking shorts" }).click();
  const picker = page.locator(".picker");
  const choices = picker.locator(".picks label");
  const choice = (title) => choices.filter({ hasText: new RegExp(`^\\s*${title}$`) });
  const choicesNow = async () => (await choices.allTextContents()).map((t) => t.trim());
  await choice("Street clip 2").waitFor();
  seen.pickerFirst = await choicesNow();
  const pickerMore = picker.getByRole("button", { name: "Load more" });
  seen.pickerMore = await pickerMore.isVisible();
  await pickerMore.click();
  await choice("Harbour at dawn").waitFor();
  seen.pickerAll = await choicesNow();
  await choice("Street clip 5").locator("input").check();
  await picker.getByLabel("Search your videos").fill("harbour");
  await choice("Street clip 5").waitFor({ state: "detached" });
  await picker.getByTestId("picker-searching").waitFor({ state: "detached" });
  seen.pickerHarbour = await choicesNow();
  await choice("Harbour at dawn").locator("input").check();
  await picker.getByLabel("Search your videos").fill("CLIP 3");
  await choice("Street clip 3").locator("input").check();
  await picker.getByLabel("Search your videos").press("Enter"); // searches; never submits the ranking
  seen.picked = (await picker.getByTestId("picked").locator("li").allTextContents()).map((t) => t.replace("✕", "").trim());
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/ranking-picker.png`, fullPage: true });
  await page.getByLabel("Title", { exact: true }).fill("Picked by search");
  await page.locator('input[name="clip"]').fill("1");
  await page.getByRole("button", { name: "Create ranking" }).click();
  await page.waitForURL((u) => /^#\/rankings\/[0-9a-f-]{36}$/.test(u.hash));
  seen.projectId = page.url().split("/").pop();
  const ranked = page.locator('[data-testid="rank-item"]');
  await ranked.nth(2).waitFor();
  seen.ranked = await ranked.evaluateAll((els) => els.map((el) => el.querySelector("input").value));
  // the preview's boxes, as the page placed them (percentages of the frame): the test compares them with render's
  const mock = (cls) => page.locator(`[data-testid="layout-preview"] .${cls}`).evaluate((el) => ({ left: el.style.left, top: el.style.top, width: el.style.width, height: el.style.height }));
  seen.preview = { safe: await mock("safe"), badge: await mock("badge-mock"), title: await mock("title-mock"), attribution: await mock("attribution-mock") };
  seen.errors = pageErrors;
  console.log(JSON.stringify(seen));
} catch (e) {
  await page.screenshot({ path: `${FAILED}/library-failed.png`, fullPage: true }).catch(() => {});
  console.error(`step "${step}" failed: ${e.stack ?? e}\nseen so far: ${JSON.stringify(seen)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
