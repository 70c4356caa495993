// vtb's VRM page: a three.js scene with the user's VRM (from the server's /model.vrm, or dropped
// on the page) or vtb's own default character, driven by the bridge's result_data frames over
// Socket.IO, plus the settings panel. Without WebGL it goes to the 2D page (/2d).
import * as THREE from "three";
import { createDefaultAvatar } from "./avatar-default.js";
import { loadVrm } from "./avatar-vrm.js";
import { poseFromParams, approach, restPose } from "./drive.js";
import { readOptions } from "./options.js";
import { connectPanel } from "./panel.js";

const options = readOptions(location.search);
const canvas = document.getElementById("stage");
let renderer = null;
// three.js needs WebGL 2: asked on a scratch canvas first, so that a browser without it goes to
// the 2D page quietly (three.js would log errors)
if (document.createElement("canvas").getContext("webgl2")) {
  try {
    renderer = new THREE.WebGLRenderer({ canvas, antialias: true, alpha: options.transparent, preserveDrawingBuffer: true });
  } catch (e) {
    console.warn("WebGL failed: showing the 2D page", e);
  }
}
if (!renderer) {
  location.replace("/2d" + location.search);
} else {
  start(renderer);
}

function start(renderer) {
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.outputColorSpace = THREE.SRGBColorSpace;
  // the background: transparent for OBS's browser source, a colour for chroma keying, or the default
  document.documentElement.style.background = document.body.style.background = options.background;
  if (options.transparent) renderer.setClearColor(0x000000, 0);
  else renderer.setClearColor(new THREE.Color(options.background), 1);
  if (!options.panel) document.getElementById("panel").style.display = "none";

  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(20, 1, 0.05, 50);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x8899aa, 1.6));
  const sun = new THREE.DirectionalLight(0xffffff, 1.8); sun.position.set(0.6, 1.5, 2.0); scene.add(sun);

  let avatar = null, pose = restPose(), target = restPose();
  let params = {}, blendshapes = {}, frames = 0, fps = 0, drawn = 0, loadError = null;
  const arrivals = [];

  function use(next) {
    if (avatar) { scene.remove(avatar.scene); if (avatar.dispose) avatar.dispose(); }
    avatar = next; scene.add(avatar.scene); frame(); fitCamera();
    document.getElementById("model").textContent = avatar.kind === "default" ? "(default avatar)" : `(VRM ${avatar.kind === "vrm0" ? "0.x" : "1.0"})`;
  }

  // head-and-shoulders: the head's height fills about a third of the view, the head a bit above centre
  function fitCamera() {
    const w = window.innerWidth, h = window.innerHeight;
    renderer.setSize(w, h, false); camera.aspect = w / h;
    if (avatar) {
      const f = avatar.focus, view = avatar.headHeight * 3.2;
      const dist = view / 2 / Math.tan(camera.fov * Math.PI / 360);
      camera.position.set(f.x, f.y - avatar.headHeight * 0.35, f.z + dist);
      camera.lookAt(f.x, f.y - avatar.headHeight * 0.45, f.z);
    }
    camera.updateProjectionMatrix();
  }

  async function loadBuffer(buffer, from) {
    try {
      use(await loadVrm(buffer));
      loadError = null;
      console.info(`loaded a VRM ${avatar.kind} from ${from}`);
    } catch (e) {
      loadError = `${from}: ${e && e.message || e}`;
      console.warn("could not load the VRM", loadError);
      document.getElementById("hint").textContent = "could not load " + loadError;
    }
  }

  // drag and drop a .vrm: read here (FileReader), nothing is uploaded
  window.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
  window.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  window.addEventListener("drop", (e) => {
    e.preventDefault(); document.body.classList.remove("dragging");
    const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => loadBuffer(reader.result, file.name);
    reader.onerror = () => { loadError = `${file.name}: unreadable`; };
    reader.readAsArrayBuffer(file);
  });

  function onFrame(data) {
    if (!data || typeof data !== "object") return;
    const next = {};
    if (data.params && typeof data.params === "object")
      for (const [k, v] of Object.entries(data.params)) if (typeof v === "number" && isFinite(v)) next[k] = v;
    const shapes = {};
    if (data.blendshapes && typeof data.blendshapes === "object")
      for (const [k, v] of Object.entries(data.blendshapes)) if (typeof v === "number" && isFinite(v)) shapes[k] = v;
    params = next; blendshapes = shapes; target = poseFromParams(params, blendshapes);
    frames++;
    const now = performance.now();                     // fps over the last 30 frames
    arrivals.push(now); if (arrivals.length > 30) arrivals.shift();
    if (arrivals.length > 1) fps = (arrivals.length - 1) * 1000 / (now - arrivals[0]);
  }

  // each display frame: the pose moves towards the last frame's, breathing, spring bones
  let t = 0, snap = false, still = false, lastTime = performance.now();
  function frame() {
    const now = performance.now(), dt = Math.min((now - lastTime) / 1000, 0.1); lastTime = now; t += dt;
    if (snap) { pose = JSON.parse(JSON.stringify(target)); snap = false; still = true; } else approach(pose, target, dt);
    if (still) t = 0;
    if (avatar) {
      const breath = Math.sin(t * 2 * Math.PI / 4.0);   // one breath every 4 s
      avatar.apply(pose, { breath: breath * 0.012, breathLift: breath * 0.002 });
      avatar.update(dt);
    }
    renderer.render(scene, camera);
    drawn++;
  }
  renderer.setAnimationLoop(frame);
  window.addEventListener("resize", fitCamera);

  use(createDefaultAvatar());
  const panel = connectPanel({ onFrame });
  (async () => {
    const config = await panel.config;
    if (config.vrm_url) {
      try {
        const r = await fetch(config.vrm_url);
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        await loadBuffer(await r.arrayBuffer(), config.vrm_url);
      } catch (e) { loadError = `${config.vrm_url}: ${e.message}`; console.warn("could not fetch the VRM", loadError); }
    }
  })();
  setInterval(() => { document.getElementById("fps").textContent = `${fps.toFixed(0)} fps`; }, 500);

  const deg = (r) => r * 180 / Math.PI;
  window.vtbAvatar = {
    get frames() { return frames; },
    // tests: jump to the current frame's pose (no interpolation) and stop the breathing from then
    // on, so that screenshots differ by the pose only
    snap() { snap = true; },
    state: () => {
      const h = avatar && avatar.head ? avatar.head.rotation : null;
      return { frames, fps, drawn, connected: panel.connected(), params: { ...params }, blendshapes: { ...blendshapes },
               model: avatar ? avatar.kind : null, perfectSync: !!(avatar && avatar.perfectSync), loadError,
               head: h ? { x: deg(h.x), y: deg(h.y), z: deg(h.z) } : null,
               calibration: panel.calibration(), settings: panel.settings(), options,
               webgl: true };
    },
  };
}
