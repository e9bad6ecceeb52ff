// The operator console in a real browser: halo-sim's "console" scenario (manual approval) with
// HTTP and a token, driven in Debian's chromium through playwright-core.
//
//   node console_test.mjs --sim build/debug/tools/halo-sim --out build/debug/tests/browser
//
// Checks: the page loads with no console errors; the token is entered once (never in a URL);
// the env-drift repair's pending approval appears, is reached with Tab and approved with Enter,
// and shows in the page's audit view and in /audit; a silence created in the page holds back the
// later broken-graft repair (suppressed "silenced by <id>", no dispatch while it lasts); the
// charts have data; the layout fits 390x844 and 1440x900 (screenshots of both in --out); when
// the server is gone the page says so. docs/images/console.png is its console-1440x900.png. halo-sim must then exit 0 (every fault healed in time).
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (v.startsWith("--") ? [...acc, [v.slice(2), a[i + 1]]] : acc), []));
const simPath = args.sim;
const out = args.out || ".";
const browserPath = args.chromium || process.env.CHROMIUM || "/usr/bin/chromium";
if (!simPath) { console.error("usage: console_test.mjs --sim PATH [--out DIR] [--chromium PATH]"); process.exit(2); }
mkdirSync(out, { recursive: true });

const failures = [];
function check(ok, what) {
  console.log((ok ? "ok   " : "FAIL ") + what);
  if (!ok) failures.push(what);
}
// Polls `probe` (async, returns a truthy value when done) every 250 ms for at most `ms`.
async function until(probe, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out after " + ms + " ms waiting for " + what);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const token = randomBytes(12).toString("hex");
const sim = spawn(simPath, ["--scenario", "console", "--http", "127.0.0.1:0", "--token", token,
                            "--json", out + "/console-report.json"], { stdio: ["ignore", "pipe", "inherit"] });
const simExit = new Promise((resolve) => sim.on("exit", (code, signal) => resolve({ code, signal })));
let base = "";
let t0 = 0;  // when the sim's clock started (its "halo-sim: scenario" line)
const started = new Promise((resolve, reject) => {
  const lines = createInterface({ input: sim.stdout });
  lines.on("line", (line) => {
    const m = /^http: listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
    if (m) base = m[1];
    if (line.startsWith("halo-sim: scenario")) { t0 = Date.now(); resolve(); }
    if (/^(repairs|faults|result):/.test(line)) console.log("sim> " + line);
  });
  sim.on("exit", () => reject(new Error("halo-sim exited before it started")));
});
const elapsed = () => (Date.now() - t0) / 1000;
const api = async (path) => {
  const r = await fetch(base + path, { headers: { Authorization: "Bearer " + token } });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
};

let browser;
try {
  await started;
  check(base !== "", "halo-sim serves HTTP at " + base);
  browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  // Each with whether the server was still up: once it is gone, failed fetches are expected.
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push({ text: m.text(), up: sim.exitCode === null }); });
  page.on("pageerror", (e) => consoleErrors.push({ text: String(e), up: true }));
  const requested = [];
  page.on("request", (r) => requested.push(r.url()));

  await page.goto(base + "/");
  await page.waitForSelector("#conn.ok", { timeout: 15000 });
  check(await page.title() === "HALO console", "the console loads");
  check((await page.textContent("#silences")).includes("Enter the token"), "silences wait for the token");

  // The token, once for this browser session: typed, submitted with Enter.
  await page.fill("#token", token);
  await page.press("#token", "Enter");
  await page.waitForSelector("#silences table, #silences .empty:not(:has-text('Enter the token'))", { timeout: 10000 });
  check(await page.evaluate(() => sessionStorage.getItem("halo-token")) !== null, "the token is kept for the session");

  // The approval, by keyboard: Tab from the top of the page to Approve, then Enter.
  await page.waitForSelector("button[data-approve]", { timeout: 30000 });
  const approvalId = await page.getAttribute("button[data-approve]", "data-approve");
  await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.focus(); });
  let reached = false;
  for (let i = 0; i < 40 && !reached; ++i) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => !!(document.activeElement && document.activeElement.dataset &&
                                            document.activeElement.dataset.approve));
  }
  check(reached, "Tab reaches the Approve button");
  await page.keyboard.press("Enter");
  await page.waitForFunction((id) => document.getElementById("notice").textContent.includes("Approval " + id),
                             approvalId, { timeout: 10000 });
  check((await page.textContent("#notice")).includes("dispatched"), "approval " + approvalId + " dispatched the repair");
  await page.fill("#audit-filter", "env.sync");
  await page.waitForFunction(() => document.getElementById("audit").textContent.includes("approved"), null,
                             { timeout: 10000 });
  check(true, "the audit view shows the approval");
  const audit = await api("/audit?limit=1000");
  check(audit.some((e) => e.kind === "approved" && String(e.approval_id) === approvalId),
        "/audit records approval " + approvalId);
  await page.fill("#audit-filter", "");

  // A silence on grafts from the page, before the broken-graft fault (t = 25 s), until t = 35 s.
  const now = elapsed();
  check(now < 22, "the silence is set up before the graft breaks (t = " + now.toFixed(1) + " s)");
  const duration = Math.max(5, Math.round(35 - now));
  await page.fill("#s-type", "graft");
  await page.fill("#s-id", "*");
  await page.fill("#s-duration", String(duration));
  await page.fill("#s-reason", "browser test: graft migration");
  await page.click("#s-create");
  await page.waitForFunction(() => document.getElementById("notice").textContent.includes("Silence"), null,
                             { timeout: 10000 });
  const silences = await api("/silences");
  const silence = silences.find((s) => s.reason === "browser test: graft migration");
  check(!!silence && silence.author === "console", "the silence exists on the server");
  const silenceEnds = t0 / 1000 + now + duration;
  check(audit.length > 0 && (await api("/audit?limit=1000")).some((e) => e.kind === "silenced" &&
        (e.reason || "").includes("browser test")), "/audit records the silence");

  // The charts have data.
  const points = await page.evaluate(() => Number(document.querySelector('.chart[data-series="requests_per_s"]')
    .dataset.points));
  check(points >= 3, "the request-rate chart has " + points + " points");
  check(await page.evaluate(() => document.querySelector('.chart[data-series="requests_per_s"] polyline')
    .getAttribute("points").split(" ").length >= 3), "the chart draws a line");

  check((await page.textContent("#cycles")).includes("analyzers"), "recent cycles show their analysis phase");
  check(/\d+(\.\d)?\/s/.test(await page.textContent("#arms")), "the arms show their rates");
  check((await page.textContent("#triggers")).includes("fires at"), "the triggers show their thresholds");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForFunction(() => window.innerWidth === 390);
  check(await page.evaluate(() => document.documentElement.scrollWidth <= 392),
        "nothing overflows sideways at 390 px");
  await page.screenshot({ path: out + "/console-390x844.png", fullPage: false });
  await page.setViewportSize({ width: 1440, height: 900 });

  // The graft breaks at t = 25 s under the silence: its repair is suppressed, not dispatched.
  const held = await until(async () => {
    const cycles = await api("/cycles?limit=100");
    return cycles.some((c) => (c.tasks || []).some((t) => t.type.startsWith("graft.") &&
      t.status === "suppressed" && (t.reason || "") === "silenced by " + silence.id));
  }, 45000, "the graft repair held back by the silence");
  check(held, "the graft repair is suppressed: silenced by " + silence.id);
  const early = (await api("/audit?limit=5000")).filter((e) => e.kind === "dispatched" &&
    (e.task_type || "").startsWith("graft.") && Date.parse(e.time) / 1000 < silenceEnds - 0.5);
  check(early.length === 0, "no graft repair dispatched while the silence lasted");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: out + "/console-1440x900.png", fullPage: false });
  await page.screenshot({ path: out + "/console-silenced.png", fullPage: true });

  // The sim ends at t = 60 s and takes its server with it: the page says so.
  const { code, signal } = await simExit;
  check(code === 0, "halo-sim exits 0, every fault healed (code " + code + ", signal " + signal + ")");
  await page.waitForSelector("#banner.show", { timeout: 10000 });
  check((await page.textContent("#banner")).includes("does not answer"), "the page says the server is gone");
  check(!requested.some((u) => u.includes(token)), "the token never appears in a URL");
  const bad = consoleErrors.filter((e) => e.up || !/ERR_CONNECTION_REFUSED|Failed to fetch/.test(e.text));
  check(bad.length === 0, "no console errors (but refused connections once the server is gone): " +
        JSON.stringify(bad.slice(0, 3)));
} catch (e) {
  failures.push(String(e && e.stack ? e.stack : e));
  console.log("FAIL " + e);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (sim.exitCode === null) sim.kill("SIGTERM");
}
console.log(failures.length ? failures.length + " check(s) failed" : "all checks passed");
process.exit(failures.length ? 1 : 0);
