// From a result_data frame to the avatar's pose, and the display-rate interpolation between frames.
//
// Conventions (Live2D standard parameters, as VTube Studio defines them; the bridge has already
// decided mirroring, the page applies what it gets):
//   ParamAngleX > 0  the face turns towards the screen's right     (yaw, degrees)
//   ParamAngleY > 0  the face looks up                             (pitch, degrees)
//   ParamAngleZ > 0  the top of the head tilts to the screen's right (clockwise on screen)
//   ParamEyeLOpen    the character's own LEFT eye, which the viewer sees on the screen's RIGHT
//   ParamEyeBallX/Y > 0  the pupils move right / up (on screen), -1..1
//   ParamBrowLY/RY > 0   the brows go up, -1..1
//   ParamMouthOpenY 0..1, ParamMouthForm -1 (frown) .. 1 (smile), ParamA/I/U/E/O 0..1 (vowels)
// `blendshapes` are the 52 ARKit ones (eyeBlinkLeft: the avatar's own left eye), 0..1.

export const VOWELS = [["aa", "ParamA"], ["ih", "ParamI"], ["ou", "ParamU"], ["ee", "ParamE"], ["oh", "ParamO"]];
const DEFAULTS = { ParamEyeLOpen: 1, ParamEyeROpen: 1 };

const clamp = (v, a, b) => Math.max(a, Math.min(b, v));
const num = (v, d) => (typeof v === "number" && isFinite(v) ? v : d);

/** The pose a frame asks for: angles in degrees, the rest 0..1 or -1..1. */
export function poseFromParams(params, blendshapes) {
  const p = (name) => num(params[name], DEFAULTS[name] || 0);
  const pose = {
    yaw: clamp(p("ParamAngleX"), -60, 60), pitch: clamp(p("ParamAngleY"), -45, 45),
    roll: clamp(p("ParamAngleZ"), -45, 45),
    eyeL: clamp(p("ParamEyeLOpen"), 0, 1.2), eyeR: clamp(p("ParamEyeROpen"), 0, 1.2),
    eyeX: clamp(p("ParamEyeBallX"), -1, 1), eyeY: clamp(p("ParamEyeBallY"), -1, 1),
    browL: clamp(p("ParamBrowLY"), -1, 1), browR: clamp(p("ParamBrowRY"), -1, 1),
    mouthOpen: clamp(p("ParamMouthOpenY"), 0, 1), mouthForm: clamp(p("ParamMouthForm"), -1, 1),
    vowels: {}, shapes: {},
  };
  let anyVowel = 0;
  for (const [vrmName, param] of VOWELS) { pose.vowels[vrmName] = clamp(p(param), 0, 1); anyVowel += pose.vowels[vrmName]; }
  // a tracker that sends no vowels: the mouth's opening as "aa"
  if (anyVowel < 1e-3) pose.vowels.aa = pose.mouthOpen;
  for (const [k, v] of Object.entries(blendshapes || {})) pose.shapes[k] = clamp(num(v, 0), 0, 1);
  return pose;
}

/** Moves `current` towards `target` with time constant tau (s): frames at 30 Hz, drawn at 60+. */
export function approach(current, target, dt, tau = 0.06) {
  const k = 1 - Math.exp(-Math.max(dt, 0) / tau);
  for (const key of Object.keys(target)) {
    const t = target[key];
    if (typeof t === "number") {
      const c = typeof current[key] === "number" ? current[key] : t;
      current[key] = c + (t - c) * k;
    }
    else if (t && typeof t === "object") { current[key] = current[key] || {}; approach(current[key], t, dt, tau); }
  }
  // shapes the frames no longer send go back to 0
  for (const key of Object.keys(current)) if (!(key in target) && typeof current[key] === "number") current[key] *= 1 - k;
  return current;
}

export const restPose = () => poseFromParams({}, {});
