// The dashboard in a real browser: Debian's Chromium, headless, driven by
// playwright-core (no browser download: executablePath is /usr/bin/chromium).
//
// Starts the example shop twice (examples/app.py: production, and newdb,
// which differs on a few pages and is slower on /search), kagami in front
// with its admin listener, sends traffic, then loads the dashboard and
// checks what a person would look at: the endpoint table, a differing
// result in the list, and that result opened with master and shadow side
// by side (a JSON one and an HTML one), and the learned noise of /ads (a
// random offer, learned by asking the shadow twice). Screenshots go to
// build/.
//
//   cd tests/browser && npm ci && KAGAMI_BIN=../../build/asan/kagami npm test
//   (or `make browser-test` from the top)
//
// A second test starts a real PostgreSQL (tests/integration/pgserver.py,
// skipped without postgresql-15), two kagami instances writing to it and
// `kagami admin --db-env` serving their store without a proxy, and checks
// the header's instance choice scopes every store query.
//
// Fails on any page error, console error (a CSP violation shows as one),
// failed request, or sanitizer report in kagami's stderr.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const KAGAMI = path.resolve(process.env.KAGAMI_BIN || path.join(ROOT, "build", "asan", "kagami"));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = path.join(ROOT, "build");
const SANITIZER = ["ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"];
const TOKEN = "browser-test-token";
const AUTH = { Authorization: "Bearer " + TOKEN };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(what + ": " + e.message);
    }
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await sleep(100);
  }
}

async function fetchText(url, headers) {
  const r = await fetch(url, { headers });
  return { status: r.status, text: await r.text() };
}

/* A config for kagami in front of the example shop's two variants; extra:
 * more keys, as Lua lines. */
function shopConfig(listen, prodPort, newdbPort, extra) {
  return `-- written by tests/browser/dashboard.test.mjs
return {
  listen = "127.0.0.1:${listen}",
  backends = {
    production = { url = "http://127.0.0.1:${prodPort}", master = true },
    newdb      = { url = "http://127.0.0.1:${newdbPort}" },
  },
${extra}}
`;
}

/* kagami's environment: sanitizers that report and stop. */
function kagamiEnv(extra) {
  return {
    ...process.env,
    ASAN_OPTIONS: process.env.ASAN_OPTIONS || "detect_leaks=1:abort_on_error=0:halt_on_error=1",
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || "print_stacktrace=1:halt_on_error=1",
    ...extra,
  };
}

/* Debian's Chromium, headless, with a profile of its own. */
function launchBrowser() {
  const userData = fs.mkdtempSync(path.join(os.tmpdir(), "kagami-chromium-"));
  return chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1360, height: 900 },
    deviceScaleFactor: 1,
  });
}

/* Everything the test started, stopped in reverse order at the end. */
const procs = [];

function start(cmd, args, opts) {
  const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  p.out = "";
  p.stdout.on("data", (d) => { p.out += d; });
  p.stderr.on("data", (d) => { p.out += d; });
  p.exited = new Promise((resolve) => p.on("exit", (code, sig) => resolve(code ?? sig)));
  procs.push(p);
  return p;
}

test("dashboard: endpoint table, differing results, side-by-side view", async (t) => {
  assert.ok(fs.existsSync(KAGAMI), KAGAMI + " not built (make build/asan/kagami)");
  assert.ok(fs.existsSync(CHROMIUM), CHROMIUM + " missing (scripts/deps.sh browser)");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "kagami-browser-"));
  const [prodPort, newdbPort, listen, adminPort] =
    [await freePort(), await freePort(), await freePort(), await freePort()];

  const app = path.join(ROOT, "examples", "app.py");
  start("python3", [app, "--port", String(prodPort), "--variant", "production"]);
  start("python3", [app, "--port", String(newdbPort), "--variant", "newdb"]);
  const config = path.join(work, "kagami.lua");
  fs.writeFileSync(config, shopConfig(listen, prodPort, newdbPort, `  store = "${path.join(work, "kagami.db")}",
  admin = ${adminPort},
  admin_token = "${TOKEN}",
  noise = { learn = true, shadow_twice = 1.0, min_pairs = 3 },
  rules = { { endpoint = "GET /api/names", unordered = { "$.names" } } },
`));
  const env = kagamiEnv();
  const kagami = start(KAGAMI, ["run", config], { cwd: work, env });
  const admin = `http://127.0.0.1:${adminPort}`;
  const proxy = `http://127.0.0.1:${listen}`;

  let browser = null;
  try {
    await waitFor("kagami's admin listener", async () => (await fetchText(admin + "/healthz")).status === 200);
    for (const port of [prodPort, newdbPort])
      await waitFor("the shop on " + port, async () => (await fetchText(`http://127.0.0.1:${port}/`)).status === 200);

    // Traffic as a browser would send it: pages, the JSON API, searches.
    const paths = ["/", "/about", "/products", "/products/1", "/products/4", "/products/5",
      "/api/products", "/api/products/4", "/api/products/2", "/search?q=tea", "/search?q=cup"];
    for (let i = 0; i < 66; i++) {
      const r = await fetch(proxy + paths[i % paths.length]);
      await r.arrayBuffer();
    }
    // The new database lists the same names in another order.
    for (let i = 0; i < 2; i++) await (await fetch(proxy + "/api/names")).arrayBuffer();
    // /ads shows a random offer: noise, learned from the shadow asked twice.
    for (let i = 0; i < 5; i++) await (await fetch(proxy + "/ads")).arrayBuffer();
    await waitFor("noise learned for GET /ads", async () => {
      const r = await fetchText(admin + "/api/noise?endpoint=" + encodeURIComponent("GET /ads"), AUTH);
      const ep = JSON.parse(r.text).endpoints[0];
      return ep && ep.pairs >= 5 && ep.suppressed > 0;
    });
    await waitFor("differing results in the store", async () => {
      const r = await fetchText(admin + "/api/results?differing=1&limit=5", AUTH);
      return r.status === 200 && JSON.parse(r.text).results.length > 0;
    });

    browser = await launchBrowser();
    const page = browser.pages()[0] || (await browser.newPage());
    const problems = [];
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("console", (m) => {
      /* The first API calls get 401 until the token is typed in. */
      if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push("console: " + m.text());
    });
    page.on("requestfailed", (r) => problems.push("request failed: " + r.url() + " " + r.failure()?.errorText));
    page.on("request", (r) => {
      if (!r.url().startsWith(admin)) problems.push("request to another origin: " + r.url());
    });

    await t.test("the page asks for the admin token", async () => {
      await page.goto(admin + "/");
      await page.waitForSelector("#login[open]");
      await page.fill("#login-token", TOKEN);
      await page.press("#login-token", "Enter");
      await page.waitForSelector("#login", { state: "hidden" });
    });

    await t.test("the endpoint table lists what was compared", async () => {
      await page.waitForSelector("#endpoints tbody tr");
      const rows = await page.$$eval("#endpoints tbody tr", (trs) => trs.map((tr) => ({
        endpoint: tr.dataset.endpoint,
        text: tr.innerText,
      })));
      const api = rows.find((r) => r.endpoint === "GET /api/products");
      assert.ok(api, "no GET /api/products row in " + JSON.stringify(rows.map((r) => r.endpoint)));
      assert.match(api.text, /100%/, "every /api/products response differs: " + api.text);
      assert.ok(rows.some((r) => r.endpoint === "GET /about" && /\b0%/.test(r.text)),
        "GET /about never differs");

      await page.waitForSelector("#cards .card");
      await page.waitForFunction(() => document.querySelector("#status").classList.contains("live"));
      // One SQLite store is one instance: nothing to choose.
      assert.ok(await page.isHidden("#instance"), "no instance choice on a SQLite store");
      await page.waitForSelector("#results tbody tr");
      await sleep(300); // let the chart settle before the picture
      await page.screenshot({ path: path.join(SHOTS, "dashboard-overview.png"), fullPage: true });
    });

    await t.test("locations beyond the listed four are counted, failures apart", async () => {
      // The shop has few locations per endpoint and no failing shadow, so
      // the API's answer is edited on its way to the page: as a store with
      // many locations and failed requests would answer.
      const edit = async (route) => {
        const r = await route.fetch();
        const j = await r.json();
        const ep = j.endpoints.find((e) => e.endpoint === "GET /api/products");
        ep.locations = ep.top_differences.length + 7;
        ep.errors = 3;
        ep.error_rate = 3 / ep.compared;
        await route.fulfill({ response: r, json: j });
      };
      await page.route(/\/api\/endpoints/, edit);
      // the page's next refresh (a reload would abort its requests)
      await page.waitForFunction(() => /\+\d+ more/.test(document.querySelector(
        '#endpoints tbody tr[data-endpoint="GET /api/products"]')?.innerText || ""));
      const text = await page.textContent('#endpoints tbody tr[data-endpoint="GET /api/products"]');
      const listed = await page.$$eval('#endpoints tbody tr[data-endpoint="GET /api/products"] .chip',
        (els) => els.length);
      assert.ok(listed <= 4, "chips: " + listed);
      const shown = JSON.parse((await fetchText(admin + "/api/endpoints", AUTH)).text).endpoints
        .find((e) => e.endpoint === "GET /api/products").top_differences.length;
      assert.match(text, new RegExp("\\+" + (shown + 7 - Math.min(4, shown)) + " more"), text);
      assert.match(text, /3 failed/, text);
      const about = await page.textContent('#endpoints tbody tr[data-endpoint="GET /about"]');
      assert.doesNotMatch(about, /more|failed/, about);
      await page.unroute(/\/api\/endpoints/, edit);
    });

    await t.test("a JSON result opens side by side with its paths highlighted", async () => {
      await page.click('#endpoints tbody tr[data-endpoint="GET /api/products"]');
      await page.waitForFunction(() => location.hash.startsWith("#/endpoint/"));
      await page.waitForFunction(() => {
        const rows = [...document.querySelectorAll("#results tbody tr")];
        return rows.length && rows.every((r) => r.innerText.includes("/api/products"));
      });
      await page.click("#results tbody tr");
      await page.waitForSelector("#view-result:not([hidden]) #sbs table");
      const title = await page.textContent("#result-title");
      assert.match(title, /^GET \/api\/products/);
      const wheres = await page.$$eval("#result-diffs .where", (els) => els.map((e) => e.textContent));
      assert.ok(wheres.some((w) => w.startsWith("$.products")), "JSON paths: " + wheres);
      const marked = await page.$$eval("#sbs td.chg, #sbs td.del, #sbs td.add", (els) => els.length);
      assert.ok(marked > 0, "no highlighted lines in the side-by-side view");
      const heads = await page.$$eval("#sbs thead th", (els) => els.map((e) => e.textContent));
      assert.deepEqual(heads, ["production (master)", "newdb (shadow)"]);
      await page.click("#result-diffs .where");
      await page.waitForSelector("#sbs tr.focus");
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(SHOTS, "dashboard-result.png"), fullPage: true });
    });

    await t.test("a reordering an unordered rule declared equal is marked, not hidden", async () => {
      const list = JSON.parse((await fetchText(admin + "/api/results?endpoint=" +
        encodeURIComponent("GET /api/names"), AUTH)).text);
      const r = list.results[0];
      assert.ok(r && r.equal, "an equal result: " + JSON.stringify(list));
      await page.goto(admin + "/#/result/" + encodeURIComponent(r.id));
      await page.waitForSelector("#view-result:not([hidden]) #sbs table");
      const note = await page.textContent("#result-suppressed");
      assert.match(note, /another order, declared equal by an unordered rule: \$\.names/, note);
      const moved = await page.$$eval("#sbs td.mv", (els) => els.map((e) => e.textContent));
      assert.ok(moved.some((l) => l.includes("Tea tin")), "moved lines: " + moved);
      const changed = await page.$$eval("#sbs td.chg, #sbs td.del, #sbs td.add", (els) => els.length);
      assert.equal(changed, 0, "a declared-equal reordering is not shown as a change");
      assert.match(await page.textContent("#sbs-note"), /marked as moved/);
      // The shadow asked twice for noise learning is not a compared backend.
      const flags = await page.$$eval("#result-backends tbody tr", (trs) =>
        trs.map((tr) => [tr.cells[0].textContent, tr.cells[tr.cells.length - 1].textContent]));
      assert.deepEqual(flags.find((f) => f[0] === "(repeat)"), ["(repeat)", ""], JSON.stringify(flags));
      await page.screenshot({ path: path.join(SHOTS, "dashboard-result-reordered.png"), fullPage: true });
    });

    await t.test("an HTML result shows a side-by-side line diff", async () => {
      await page.goto(admin + "/#/endpoint/" + encodeURIComponent("GET /products/:id"));
      await page.waitForFunction(() => [...document.querySelectorAll("#results tbody tr")]
        .some((r) => r.innerText.includes("/products/4")));
      const id = await page.$$eval("#results tbody tr", (trs) =>
        trs.find((r) => r.innerText.includes("/products/4")).dataset.id);
      await page.goto(admin + "/#/result/" + encodeURIComponent(id));
      await page.waitForSelector("#view-result:not([hidden]) #sbs table");
      const del = await page.$$eval("#sbs td.del", (els) => els.map((e) => e.textContent));
      const add = await page.$$eval("#sbs td.add", (els) => els.map((e) => e.textContent));
      assert.ok(del.some((l) => l.includes("12.50")), "master line: " + del);
      assert.ok(add.some((l) => l.includes("12.49")), "shadow line: " + add);
      await page.screenshot({ path: path.join(SHOTS, "dashboard-result-html.png"), fullPage: true });
    });

    await t.test("learned noise is listed with its evidence, from the header and an endpoint", async () => {
      await page.goto(admin + "/#/endpoint/" + encodeURIComponent("GET /ads"));
      const href = await page.getAttribute("#noise-link", "href");
      assert.equal(href, "#/noise/" + encodeURIComponent("GET /ads"));
      await page.click("#noise-link");
      await page.waitForSelector('#view-noise:not([hidden]) #noise tbody[data-endpoint="GET /ads"] tr[data-location]');
      assert.ok(await page.isHidden("#view-overview") && await page.isHidden("#view-result"));
      const groups = await page.$$eval("#noise tbody", (bs) => bs.map((b) => b.dataset.endpoint));
      assert.deepEqual(groups, ["GET /ads"], "one endpoint's noise only");
      const rows = await page.$$eval('#noise tbody[data-endpoint="GET /ads"] tr[data-location]', (trs) =>
        trs.map((tr) => ({ loc: tr.dataset.location, cells: [...tr.cells].map((c) => c.textContent) })));
      const offer = rows.find((r) => r.cells[1] === "suppressed");
      assert.ok(offer, "a suppressed location in " + JSON.stringify(rows));
      assert.match(offer.loc, /^\/html\/body/, "an XPath: " + offer.loc);
      assert.match(offer.cells[2], /^(\d+) \/ \1$/, "differed in every pair: " + offer.cells[2]);
      assert.notEqual(offer.cells[3], "–");
      // Every endpoint, from the header link on the overview.
      await page.click(".brand");
      await page.waitForSelector("#view-overview:not([hidden])");
      assert.equal(await page.getAttribute("#noise-link", "href"), "#/noise");
      await page.click("#noise-link");
      await page.waitForFunction(() => document.querySelectorAll("#noise tbody").length > 1);
      const all = await page.$$eval("#noise tbody", (bs) => bs.map((b) => b.dataset.endpoint));
      assert.ok(all.includes("GET /ads") && all.includes("GET /api/products"), JSON.stringify(all));
      assert.deepEqual(all, [...all].sort(), "sorted by endpoint");
      await page.screenshot({ path: path.join(SHOTS, "dashboard-noise.png"), fullPage: true });
    });

    assert.deepEqual(problems, [], "the page reported problems");
  } finally {
    if (browser) await browser.close();
    kagami.kill("SIGTERM");
    let timer;
    const rc = await Promise.race([kagami.exited,
      new Promise((resolve) => { timer = setTimeout(() => resolve("timeout"), 20000); })]);
    clearTimeout(timer);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    const found = SANITIZER.filter((m) => kagami.out.includes(m));
    if (rc !== 0 || found.length) console.error(kagami.out.slice(-6000));
    assert.equal(rc, 0, "kagami's exit status");
    assert.deepEqual(found, [], "sanitizer reports in kagami's stderr");
    fs.rmSync(work, { recursive: true, force: true });
  }
});

/* A real PostgreSQL 15 for the length of a test, started by the
 * integration tests' helper; resolves to a fresh database's url. */
function startPostgres() {
  const helper = path.join(ROOT, "tests", "integration");
  const code = `import sys
sys.path.insert(0, ${JSON.stringify(helper)})
import pgserver
if not pgserver.available():
    print("unavailable", flush=True)
    sys.exit(0)
with pgserver.PgServer() as s:
    print(s.create_database("fleet"), flush=True)
    sys.stdin.read()
`;
  const p = start("python3", ["-u", "-c", code], { stdio: ["pipe", "pipe", "pipe"] });
  return p;
}

test("kagami admin on a fleet's store: the instance choice scopes the dashboard", async (t) => {
  assert.ok(fs.existsSync(KAGAMI), KAGAMI + " not built (make build/asan/kagami)");
  const pg = startPostgres();
  const url = await waitFor("PostgreSQL", async () => {
    const line = pg.out.split("\n").find((l) => l === "unavailable" || l.startsWith("postgresql://"));
    if (!line && pg.exitCode !== null) throw new Error("pgserver exited: " + pg.out);
    return line;
  }, 60000);
  if (url === "unavailable") {
    t.skip("postgresql-15 is not installed");
    return;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "kagami-browser-fleet-"));
  const [prodPort, newdbPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const app = path.join(ROOT, "examples", "app.py");
  start("python3", [app, "--port", String(prodPort), "--variant", "production"]);
  start("python3", [app, "--port", String(newdbPort), "--variant", "newdb"]);
  const env = kagamiEnv({ KG_FLEET_STORE: url });
  const kagamis = [];
  const proxies = {};
  for (const name of ["east", "west"]) {
    const listen = await freePort();
    const config = path.join(work, name + ".lua");
    fs.writeFileSync(config, shopConfig(listen, prodPort, newdbPort,
      `  store = { url_env = "KG_FLEET_STORE" },
  instance = "${name}",
`));
    kagamis.push(start(KAGAMI, ["run", config], { cwd: work, env }));
    proxies[name] = `http://127.0.0.1:${listen}`;
  }
  const admin = `http://127.0.0.1:${adminPort}`;
  let adminProc = null;
  let browser = null;
  try {
    for (const port of [prodPort, newdbPort])
      await waitFor("the shop on " + port, async () => (await fetchText(`http://127.0.0.1:${port}/`)).status === 200);
    // east sees the JSON API and /about, west product pages
    const sent = { east: ["/api/products", "/api/products", "/api/products", "/about", "/about"],
      west: ["/products/4", "/products/4", "/products/1"] };
    for (const [name, paths] of Object.entries(sent))
      for (const p of paths)
        await waitFor("kagami " + name, async () => { await (await fetch(proxies[name] + p)).arrayBuffer(); return true; });
    adminProc = start(KAGAMI, ["admin", "--db-env", "KG_FLEET_STORE", "--listen", String(adminPort)],
      { cwd: work, env });
    await waitFor("kagami admin", async () => (await fetchText(admin + "/healthz")).status === 200);
    await waitFor("both instances' counts in the store", async () =>
      JSON.parse((await fetchText(admin + "/api/endpoints")).text).compared === 8);

    browser = await launchBrowser();
    const page = browser.pages()[0] || (await browser.newPage());
    const problems = [];
    const asked = [];
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
    let reloading = false; /* a reload aborts the polls in flight: not a problem */
    page.on("requestfailed", (r) => {
      if (!(reloading && r.failure()?.errorText === "net::ERR_ABORTED"))
        problems.push("request failed: " + r.url() + " " + r.failure()?.errorText);
    });
    page.on("request", (r) => asked.push(r.url()));
    const rowsShown = () => page.$$eval("#endpoints tbody tr", (trs) => trs.map((tr) => tr.dataset.endpoint).sort());

    await t.test("the whole fleet, with a choice of instance", async () => {
      await page.goto(admin + "/");
      await page.waitForSelector("#instance:not([hidden])");
      const options = await page.$$eval("#instance option", (os) => os.map((o) => o.textContent));
      assert.deepEqual(options, ["All instances", "east", "west"]);
      await page.waitForFunction(() => document.querySelectorAll("#endpoints tbody tr").length === 3);
      assert.deepEqual(await rowsShown(), ["GET /about", "GET /api/products", "GET /products/:id"]);
      // no proxy here: the totals are the store's, and no learned noise
      const cards = await page.$$eval("#cards .card .label", (ls) => ls.map((l) => l.textContent));
      assert.deepEqual(cards.slice(0, 2), ["Compared", "Differing"]);
      assert.equal(await page.textContent("#cards .card .value"), "8");
      assert.ok(await page.isHidden("#noise-link"), "no learned noise without a proxy");
      assert.ok(!asked.some((u) => u.endsWith("/metrics")), "no live counters asked for");
      await page.screenshot({ path: path.join(SHOTS, "dashboard-fleet.png"), fullPage: true });
    });

    await t.test("one instance: every store query says which", async () => {
      asked.length = 0;
      await page.selectOption("#instance", "west");
      await page.waitForFunction(() => {
        const eps = [...document.querySelectorAll("#endpoints tbody tr")].map((tr) => tr.dataset.endpoint);
        return eps.length === 1 && eps[0] === "GET /products/:id";
      });
      assert.equal(await page.textContent("#cards .card .value"), "3");
      for (const kind of ["/api/endpoints", "/api/timeseries", "/api/results"]) {
        const urls = asked.filter((u) => u.includes(kind));
        assert.ok(urls.length && urls.every((u) => new URL(u).searchParams.get("instance") === "west"),
          kind + ": " + JSON.stringify(urls));
      }
      // the choice survives a reload, and "All instances" goes back to the fleet
      reloading = true;
      await page.reload();
      await page.waitForFunction(() => document.querySelector("#instance").value === "west");
      reloading = false;
      await page.selectOption("#instance", "");
      await page.waitForFunction(() => document.querySelectorAll("#endpoints tbody tr").length === 3);
    });

    assert.deepEqual(problems, [], "the page reported problems");
  } finally {
    if (browser) await browser.close();
    const stopped = [adminProc, ...kagamis].filter(Boolean);
    for (const p of stopped) p.kill("SIGTERM");
    let timer;
    const rcs = await Promise.race([Promise.all(stopped.map((p) => p.exited)),
      new Promise((resolve) => { timer = setTimeout(() => resolve("timeout"), 20000); })]);
    clearTimeout(timer);
    pg.stdin.end();
    await Promise.race([pg.exited, sleep(30000)]);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    const found = stopped.flatMap((p) => SANITIZER.filter((m) => p.out.includes(m)));
    if (rcs === "timeout" || rcs.some((rc) => rc !== 0) || found.length)
      for (const p of stopped) console.error(p.out.slice(-4000));
    assert.notEqual(rcs, "timeout", "kagami exited");
    assert.deepEqual(rcs, stopped.map(() => 0), "exit statuses");
    assert.deepEqual(found, [], "sanitizer reports in kagami's stderr");
    fs.rmSync(work, { recursive: true, force: true });
  }
});
