// Opens the avatar page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core, as screenshot.js) and clicks its "calibrate neutral" button.
// usage: node calibrate.js URL [OUT.png]
// Prints {"ready": state} once the page shows frames, then {"clicked": true}, then
// {"calibration": the bridge's answer {success, message}, "panel": the text the page shows}
// (OUT.png: a screenshot after the answer), {"done": true} at the end.
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const [url, shot] = process.argv.slice(2);
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
    await page.goto(url);
    await page.waitForFunction(() => window.vtbAvatar && window.vtbAvatar.frames > 0, null, { timeout: 20000 });
    out({ ready: await page.evaluate(() => window.vtbAvatar.state()) });
    await page.click("#calibrate", { timeout: 10000 });   // waits until it is enabled (connected)
    out({ clicked: true });
    await page.waitForFunction(() => window.vtbAvatar.state().calibration !== null, null, { timeout: 20000 });
    const calibration = await page.evaluate(() => window.vtbAvatar.state().calibration);
    const panel = await page.textContent("#calibration");
    if (shot) await page.screenshot({ path: shot });
    out({ calibration, panel });
    out({ done: true });
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exit(0);
})().catch((e) => { out({ error: String(e && e.stack || e) }); process.exit(1); });
