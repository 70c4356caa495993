// Opens the VRM avatar page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; WebGL through SwiftShader, Chromium's software GPU) and saves screenshots.
// usage: node vrm_shots.js URL OUTDIR [--drop FILE.vrm] [--model KIND] [--alpha] SHOT ...
//   SHOT = NAME:Param=value,Param=value...  waits until the page has received 3 consecutive
//          frames with those params, jumps to that pose, saves OUTDIR/NAME.png, prints
//          {"shot": NAME, "file", "state"}
//   --drop FILE  drops FILE on the page (a File built from its bytes, as a user's drag and drop)
//   --model KIND waits until the page shows that model (default, vrm0, vrm1) before the shots
//   --alpha      screenshots keep the page's transparency (omitBackground)
//   --no-webgl   starts Chromium with WebGL off (the page should go to the 2D one)
//   --size WxH   the window's size (default 800x600)
//   --set NAME=VALUE  moves the panel's slider (or ticks the checkbox) NAME, after {"ready"}, and
//                waits until the page shows the bridge's answer (its `settings` event): {"set": ...}
//   --calibrate  clicks "calibrate neutral" after that: {"calibration": answer, "panel": text shown}
// Prints {"webgl": ...} (the WebGL renderer), {"ready": state}, {"request": url} for every
// request, {"done": true} at the end.
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const args = process.argv.slice(2);
const [url, outDir] = args;
let drop = null, model = null, alpha = false;
const sets = [];
let calibrate = false, webgl = true, size = [800, 600];
const shots = [];
for (let i = 2; i < args.length; i++) {
  if (args[i] === "--drop") drop = args[++i];
  else if (args[i] === "--model") model = args[++i];
  else if (args[i] === "--alpha") alpha = true;
  else if (args[i] === "--set") sets.push(args[++i].split("="));
  else if (args[i] === "--calibrate") calibrate = true;
  else if (args[i] === "--no-webgl") webgl = false;
  else if (args[i] === "--size") size = args[++i].split("x").map(Number);
  else shots.push(args[i]);
}
const exe = process.env.VTB_CHROMIUM || "/usr/bin/chromium";
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

(async () => {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "vtb-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: exe, headless: true, viewport: { width: size[0], height: size[1] },
    args: ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           ...(webgl ? [] : ["--disable-webgl", "--disable-webgl2"])],
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on("console", (m) => out({ console: m.type(), text: m.text() }));
    page.on("pageerror", (e) => out({ pageerror: String(e) }));
    page.on("requestfailed", (r) => out({ requestfailed: r.url() }));
    page.on("request", (r) => out({ request: r.url() }));
    out({ webgl: await page.evaluate(() => {          // on about:blank, before the page
      const gl = document.createElement("canvas").getContext("webgl2");
      return gl ? gl.getParameter(gl.RENDERER) : null;
    }) });
    await page.goto(url);
    await page.waitForFunction(() => window.vtbAvatar && window.vtbAvatar.frames > 0, null, { timeout: 30000 });
    if (drop) {
      const bytes = fs.readFileSync(drop).toString("base64");
      await page.evaluate(([b64, name]) => {
        const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([raw], name, { type: "model/gltf-binary" }));
        window.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, [bytes, path.basename(drop)]);
      out({ dropped: path.basename(drop) });
    }
    if (model) await page.waitForFunction((m) => window.vtbAvatar.state().model === m, model, { timeout: 30000 });
    out({ ready: await page.evaluate(() => window.vtbAvatar.state()), url: page.url() });
    for (const [name, value] of sets) {
      const want = value === "true" ? true : value === "false" ? false : parseFloat(value);
      if (typeof want === "boolean") await page.setChecked("#" + name, want, { timeout: 10000 });
      else await page.fill("#" + name, String(want), { timeout: 10000 });   // a range input: sets it, fires input
      await page.waitForFunction(([n, v]) => window.vtbAvatar.state().settings[n] === v, [name, want], { timeout: 10000 });
      // and the bridge's answer (the panel's line under the sliders: "" when set and saved)
      await page.waitForFunction(() => document.getElementById("settings_state").textContent !== "saving...", null,
                                 { timeout: 10000 });
      out({ set: name, value: want, state: await page.evaluate(() => window.vtbAvatar.state()),
            panel_state: await page.textContent("#settings_state"),
            shown: await page.evaluate((n) => { const el = document.getElementById(n);
              return el.type === "checkbox" ? el.checked : el.value; }, name) });
    }
    if (calibrate) {
      await page.click("#calibrate", { timeout: 10000 });   // waits until it is enabled (connected)
      await page.waitForFunction(() => window.vtbAvatar.state().calibration !== null, null, { timeout: 20000 });
      out({ calibration: await page.evaluate(() => window.vtbAvatar.state().calibration),
            panel: await page.textContent("#calibration") });
    }
    for (const spec of shots) {
      const [name, assigns] = spec.split(":");
      const want = Object.fromEntries((assigns || "").split(",").filter(Boolean).map((a) => {
        const [k, v] = a.split("="); return [k, parseFloat(v)];
      }));
      await page.evaluate(() => { window.__vtbRun = 0; window.__vtbSeen = window.vtbAvatar.frames; });
      await page.waitForFunction((want) => {
        const a = window.vtbAvatar;
        if (a.frames !== window.__vtbSeen) {
          window.__vtbSeen = a.frames;
          const p = a.state().params;
          const ok = Object.entries(want).every(([k, v]) => Math.abs((p[k] ?? 0) - v) < 1e-6);
          window.__vtbRun = ok ? window.__vtbRun + 1 : 0;
        }
        return window.__vtbRun >= 3;
      }, want, { timeout: 30000, polling: 10 });
      // jump to the pose, then let the page draw a few frames
      await page.evaluate(() => new Promise((done) => {
        if (window.vtbAvatar.snap) window.vtbAvatar.snap();     // the 2D page has none
        let n = 0; const tick = () => (++n >= 4 ? done() : requestAnimationFrame(tick)); requestAnimationFrame(tick);
      }));
      const file = path.join(outDir, name + ".png");
      await page.screenshot({ path: file, omitBackground: alpha });
      out({ shot: name, file, state: await page.evaluate(() => window.vtbAvatar.state()),
            panel: await page.evaluate(() => {          // where the panel is on the screen, if shown
              const r = document.getElementById("panel").getBoundingClientRect();
              return r.width && r.height ? [r.left, r.top, r.right, r.bottom] : null;
            }) });
    }
    out({ done: true });
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exit(0);
})().catch((e) => { out({ error: String(e && e.stack || e) }); process.exit(1); });
