// Opens the avatar page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core, which never downloads a browser) and saves screenshots.
// usage: node screenshot.js URL OUTDIR NAME:PARAM=VALUE ...
// For each NAME:PARAM=VALUE in turn: waits until the page has drawn 3 consecutive frames whose
// PARAM equals VALUE, saves OUTDIR/NAME.png and prints {"shot": NAME, "file": ..., "state": ...}.
// Prints {"ready": state} once the page shows frames, {"done": true} at the end.
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const [url, outDir, ...shots] = process.argv.slice(2);
const exe = process.env.VTB_CHROMIUM || "/usr/bin/chromium";
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

(async () => {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vtb-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: exe, headless: true, viewport: { width: 800, height: 600 },
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on("console", (m) => out({ console: m.type(), text: m.text() }));
    page.on("pageerror", (e) => out({ pageerror: String(e) }));
    page.on("requestfailed", (r) => out({ requestfailed: r.url() }));
    page.on("request", (r) => out({ request: r.url() }));
    await page.goto(url);
    await page.waitForFunction(() => window.vtbAvatar && window.vtbAvatar.frames > 0, null, { timeout: 20000 });
    out({ ready: await page.evaluate(() => window.vtbAvatar.state()) });
    for (const spec of shots) {
      const [name, assign] = spec.split(":");
      const [param, value] = assign.split("=");
      await page.evaluate(() => { window.__vtbRun = 0; window.__vtbSeen = window.vtbAvatar.frames; });
      await page.waitForFunction(([param, value]) => {
        const a = window.vtbAvatar;
        if (a.frames !== window.__vtbSeen) {
          window.__vtbSeen = a.frames;
          window.__vtbRun = Math.abs(a.state().params[param] - value) < 1e-6 ? window.__vtbRun + 1 : 0;
        }
        return window.__vtbRun >= 3;
      }, [param, parseFloat(value)], { timeout: 20000, polling: 10 });
      const file = path.join(outDir, name + ".png");
      await page.screenshot({ path: file });
      out({ shot: name, file, state: await page.evaluate(() => window.vtbAvatar.state()) });
    }
    out({ done: true });
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exit(0);
})().catch((e) => { out({ error: String(e && e.stack || e) }); process.exit(1); });
