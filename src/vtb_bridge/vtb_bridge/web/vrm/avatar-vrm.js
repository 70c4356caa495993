// A user's VRM (0.x or 1.0, through @pixiv/three-vrm) driven by the same pose as the default avatar.
import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { VRMLoaderPlugin, VRMUtils } from "@pixiv/three-vrm";

const DEG = Math.PI / 180;
// the 52 ARKit blendshapes: a "perfect sync" model has expressions of these names
export const ARKIT = ["eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
  "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight",
  "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen",
  "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
  "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
  "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
  "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
  "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
  "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut"];

/** Parses a .vrm (an ArrayBuffer) into a driven avatar. */
export async function loadVrm(buffer) {
  const loader = new GLTFLoader();
  loader.register((parser) => new VRMLoaderPlugin(parser));
  const gltf = await loader.parseAsync(buffer, "");
  const vrm = gltf.userData.vrm;
  if (!vrm || !vrm.humanoid) throw new Error("not a VRM file (no VRM humanoid in it)");
  const version = vrm.meta && vrm.meta.metaVersion === "0" ? "0" : "1";
  VRMUtils.removeUnnecessaryVertices(gltf.scene);
  VRMUtils.combineSkeletons(gltf.scene);
  // VRM 0.x models face -Z: turn them to face the camera (+Z) as VRM 1.0 ones do
  VRMUtils.rotateVRM0(vrm);
  vrm.scene.traverse((o) => { o.frustumCulled = false; });
  return wrap(vrm, version);
}

function wrap(vrm, version) {
  const bone = (name) => vrm.humanoid.getNormalizedBoneNode(name);
  const head = bone("head"), neck = bone("neck"), chest = bone("upperChest") || bone("chest"), spine = bone("spine");
  // normalized bones of a VRM 0.x model keep its own axes (facing -Z before rotateVRM0): the X and
  // Z rotations (pitch and roll) have the opposite sign there
  const flip = version === "0" ? -1 : 1;
  const em = vrm.expressionManager;
  const has = (name) => !!(em && em.getExpression(name));
  // perfect sync: the ARKit names, as they are or with a capital (both are found in the wild)
  const sync = {};
  for (const n of ARKIT) {
    const cap = n[0].toUpperCase() + n.slice(1);
    if (has(n)) sync[n] = n; else if (has(cap)) sync[n] = cap;
  }
  const perfectSync = Object.keys(sync).length >= 10;
  // relax the arms from the T-pose a little so shoulders look natural in a head-and-shoulders shot
  for (const [name, z] of [["leftUpperArm", -1.2], ["rightUpperArm", 1.2]]) {
    const b = bone(name); if (b) b.rotation.z = flip * z;
  }

  function rotate(node, pitch, yaw, roll) {
    if (node) node.rotation.set(flip * -pitch * DEG, yaw * DEG, flip * -roll * DEG, "YXZ");
  }

  function apply(pose, extra = {}) {
    const headK = extra.headShare ?? 0.6;   // the turn is split: 60 % head, 40 % neck (no neck: all head)
    const neckK = neck ? 1 - headK : 0;
    rotate(head, pose.pitch * (neck ? headK : 1), pose.yaw * (neck ? headK : 1), pose.roll * (neck ? headK : 1));
    rotate(neck, pose.pitch * neckK, pose.yaw * neckK, pose.roll * neckK);
    // a little chest, damped (the pose is already smoothed; the chest follows at a tenth)
    if (chest) { rotate(chest, pose.pitch * 0.08, pose.yaw * 0.1, pose.roll * 0.08); chest.rotation.x += flip * (extra.breath || 0); }
    if (spine && spine !== chest) spine.rotation.x = flip * (extra.breath || 0) * 0.5;
    // eyes: yaw > 0 looks to the screen's right (the model's own left), pitch > 0 up
    if (vrm.lookAt) { vrm.lookAt.yaw = pose.eyeX * 20; vrm.lookAt.pitch = pose.eyeY * 15; }
    if (!em) return;
    // perfect sync: every ARKit-named expression the model has follows the frame's blendshape
    const shapes = pose.shapes, sent = (n) => n in shapes && sync[n];
    for (const [arkit, name] of Object.entries(sync)) if (arkit in shapes) em.setValue(name, shapes[arkit]);
    // blinkLeft is the model's own left eye (ParamEyeLOpen); three-vrm maps VRM 0.x's blink_l etc.
    if (!(sent("eyeBlinkLeft") && sent("eyeBlinkRight"))) {
      em.setValue("blinkLeft", 1 - Math.min(1, pose.eyeL));
      em.setValue("blinkRight", 1 - Math.min(1, pose.eyeR));
    }
    // the vowels, unless a full perfect-sync model shapes the mouth from the blendshapes
    for (const [name, v] of Object.entries(pose.vowels)) em.setValue(name, perfectSync && sent("jawOpen") ? 0 : v);
    if (has("happy")) em.setValue("happy", Math.max(0, pose.mouthForm) * 0.5);
  }

  // framing: from the neck to the top of the model (the hair) is the head's height
  vrm.scene.updateMatrixWorld(true);
  const headCentre = () => {
    const p = new THREE.Vector3(); (head || vrm.scene).getWorldPosition(p); return p;
  };
  const top = new THREE.Box3().setFromObject(vrm.scene).max.y;
  const base = headCentre();
  const neckY = neck ? neck.getWorldPosition(new THREE.Vector3()).y : base.y - 0.08;
  const headHeight = Math.min(0.6, Math.max(0.12, top - neckY));
  const focus = new THREE.Vector3(base.x, neckY + headHeight * 0.55, base.z);
  return { kind: version === "0" ? "vrm0" : "vrm1", vrm, scene: vrm.scene, head, neck, chest, apply, perfectSync,
           update: (dt) => vrm.update(dt), headCentre, headHeight, focus,
           dispose: () => VRMUtils.deepDispose(vrm.scene) };
}
