// The dashboard's Learned noise view against a running kagami (argv[2]:
// its admin URL), in Debian's headless Chromium with the browser test's
// playwright-core (`make browser-test` installs it). Prints, as JSON, how
// long the view takes to show every endpoint and how many rows it drew.
// Run by bench/noise_api.py --browser, with the model at its caps.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { chromium } = createRequire(path.join(ROOT, "tests", "browser", "package.json"))("playwright-core");
const [admin, endpoints] = [process.argv[2], Number(process.argv[3])];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const t0 = Date.now();
  await page.goto(admin + "/#/noise");
  await page.waitForFunction((n) => document.querySelectorAll("#noise tbody").length === n,
    endpoints, { timeout: 120000 });
  const shown = Date.now() - t0;
  const rows = await page.$$eval("#noise tr[data-location]", (r) => r.length);
  const t1 = Date.now();
  await page.click("#noise tbody button.more");
  const opened = Date.now() - t1;
  const all = await page.$$eval("#noise tbody:first-of-type tr[data-location]", (r) => r.length);
  console.log(JSON.stringify({ shown_ms: shown, rows, show_more_ms: opened, rows_after_more: all, errors }));
} finally {
  await browser.close();
}
