// The Socket.IO connection (namespace and event from /config.json, the page's ?token= passed on)
// and the panel: status, "calibrate neutral" (the bridge's calibrate_neutral command) and the
// settings sliders, which send the `settings` command {head_sensitivity, eye_sensitivity,
// smoothing, mirror}; the bridge answers with a `settings` event (on connect and after every
// change, from any page), which is what the sliders show.
const SETTINGS = ["head_sensitivity", "eye_sensitivity", "smoothing", "mirror"];
// under this width the 270 px panel would cover the avatar's face: it starts folded
const NARROW_PX = 720;

export function connectPanel({ onFrame }) {
  const $ = (id) => document.getElementById(id);
  const statusEl = $("status"), calibrateEl = $("calibrate"), calibrationEl = $("calibration"), stateEl = $("settings_state");
  let connected = false, calibration = null, settings = {}, socket = null;
  const panelEl = $("panel"), moreEl = $("more");
  moreEl.open = window.innerWidth >= NARROW_PX;        // the user's click decides after that
  const fold = () => panelEl.classList.toggle("folded", !moreEl.open);
  moreEl.addEventListener("toggle", fold);
  fold();
  let resolveConfig;
  const config = new Promise((r) => { resolveConfig = r; });

  function show(s) {
    settings = { ...s };
    for (const name of SETTINGS) {
      const el = $(name); if (!el || !(name in s)) continue;
      if (el.type === "checkbox") el.checked = !!s[name];
      else { el.value = String(s[name]); const o = el.parentElement.querySelector("output"); if (o) o.textContent = Number(s[name]).toFixed(2); }
    }
  }

  function send(change) {
    if (!socket || !connected) return;
    stateEl.textContent = "saving...";
    socket.timeout(5000).emit("settings", change, (err, ack) => {
      // applied but not written to the settings file (kept: false): say so, it is lost at the next start
      stateEl.textContent = err ? "no answer: " + err.message
        : !(ack && ack.success) ? "refused: " + (ack && ack.message)
        : ack.kept === false ? "applied, not saved: " + ack.message : "";
      stateEl.className = err || !(ack && ack.success) || ack.kept === false ? "bad" : "";
    });
  }
  for (const name of SETTINGS) {
    const el = $(name); if (!el) continue;
    el.disabled = true;
    // the number follows the slider as it moves; the bridge hears of it once it is let go
    el.addEventListener("input", () => {
      const o = el.type !== "checkbox" && el.parentElement.querySelector("output");
      if (o) o.textContent = parseFloat(el.value).toFixed(2);
    });
    el.addEventListener("change", () => send({ [name]: el.type === "checkbox" ? el.checked : parseFloat(el.value) }));
  }

  (async () => {
    let cfg = { namespace: "/kizuna", event: "result_data", vrm_url: null, settings: {} };
    try { cfg = Object.assign(cfg, await (await fetch("/config.json")).json()); } catch (e) {}
    resolveConfig(cfg);
    if (cfg.settings) show(cfg.settings);
    const token = new URLSearchParams(location.search).get("token");
    socket = io(cfg.namespace, { transports: ["websocket"], auth: token ? { token } : {} });
    const enable = (on) => { calibrateEl.disabled = !on; for (const n of SETTINGS) if ($(n)) $(n).disabled = !on; };
    socket.on("connect", () => {
      connected = true; statusEl.textContent = "connected"; statusEl.className = "ok"; enable(true);
      socket.emit("hello", { page: "vrm" });
    });
    socket.on("disconnect", (r) => { connected = false; statusEl.textContent = "disconnected: " + r; statusEl.className = "bad"; enable(false); });
    socket.on("connect_error", (e) => { statusEl.textContent = "refused: " + e.message; statusEl.className = "bad"; });
    socket.on(cfg.event, onFrame);
    socket.on("settings", (s) => { if (s && typeof s === "object") show(s); });
    calibrateEl.onclick = () => {
      calibrationEl.textContent = "asking..."; calibrationEl.className = "";
      socket.timeout(5000).emit("calibrate_neutral", {}, (err, ack) => {
        calibration = err ? { success: false, message: "no answer: " + err.message } : ack;
        calibrationEl.textContent = (calibration && calibration.success ? "ok: " : "failed: ") + (calibration ? calibration.message : "");
        calibrationEl.className = calibration && calibration.success ? "" : "bad";
      });
    };
  })();

  return { config, connected: () => connected, calibration: () => calibration, settings: () => ({ ...settings }) };
}
