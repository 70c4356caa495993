// vtb's own 3D character, built from three.js geometry (no download): head, eyes with lids that
// close, pupils that move, a mouth that opens, brows, neck and shoulders. It faces +Z (the camera);
// its own left (ParamEyeLOpen, blinkLeft) is at +X, which the viewer sees on the screen's right.
import * as THREE from "three";

const DEG = Math.PI / 180;

export function createDefaultAvatar() {
  const root = new THREE.Group();
  const mat = (color, extra = {}) => new THREE.MeshStandardMaterial({ color, roughness: 0.75, ...extra });
  const skin = mat(0xf6d5b8), hairMat = mat(0x3b2a22), cloth = mat(0x5b6fb0);
  const mesh = (geo, m, x = 0, y = 0, z = 0) => { const o = new THREE.Mesh(geo, m); o.position.set(x, y, z); return o; };

  // body: shoulders and chest (a rounded box), neck; the chest breathes, the neck and head turn
  const chest = new THREE.Group(); chest.position.set(0, 1.25, 0); root.add(chest);
  const shoulders = mesh(new THREE.CapsuleGeometry(0.06, 0.25, 8, 24), cloth, 0, -0.045, 0);
  shoulders.rotation.z = Math.PI / 2; shoulders.scale.set(1, 1, 0.9); chest.add(shoulders);
  const body = mesh(new THREE.CylinderGeometry(0.17, 0.14, 0.45, 32), cloth, 0, -0.27, 0); body.scale.z = 0.55; chest.add(body);
  const collar = mesh(new THREE.TorusGeometry(0.05, 0.012, 8, 24), mat(0xeeeeee), 0, 0.0, 0.0);
  collar.rotation.x = Math.PI / 2; chest.add(collar);
  const neck = new THREE.Group(); neck.position.set(0, 0.04, 0); chest.add(neck);
  neck.add(mesh(new THREE.CylinderGeometry(0.04, 0.045, 0.12, 16), skin, 0, 0.04, 0));
  const head = new THREE.Group(); head.position.set(0, 0.07, 0); neck.add(head);

  const face = mesh(new THREE.SphereGeometry(0.12, 40, 32), skin, 0, 0.1, 0); face.scale.set(0.95, 1.08, 0.95); head.add(face);
  const hair = mesh(new THREE.SphereGeometry(0.128, 40, 32, 0, 2 * Math.PI, 0, Math.PI * 0.55), hairMat, 0, 0.115, -0.012);
  hair.scale.set(0.98, 1.08, 1.0); hair.rotation.x = -0.62; head.add(hair);
  const back = mesh(new THREE.SphereGeometry(0.126, 32, 24), hairMat, 0, 0.09, -0.03); back.scale.set(0.98, 1.05, 0.85); head.add(back);
  const nose = mesh(new THREE.ConeGeometry(0.012, 0.03, 12), skin, 0, 0.085, 0.118); nose.rotation.x = Math.PI / 2.4; head.add(nose);

  // eyes: side +1 is the character's LEFT (screen right)
  const eyes = {};
  for (const [side, name] of [[1, "L"], [-1, "R"]]) {
    // the eye's group is flattened (an ellipsoid), the white and its lid inside it alike
    const g = new THREE.Group(); g.position.set(side * 0.043, 0.115, 0.107); g.scale.set(1, 1.15, 0.6); head.add(g);
    const white = mesh(new THREE.SphereGeometry(0.024, 24, 16), mat(0xffffff, { roughness: 0.4 })); g.add(white);
    const pupil = new THREE.Group(); g.add(pupil);
    const iris = mesh(new THREE.CircleGeometry(0.013, 24), mat(0x3a5fa8), 0, 0, 0.0242); pupil.add(iris);
    const dot = mesh(new THREE.CircleGeometry(0.006, 16), mat(0x111111), 0, 0, 0.0244); pupil.add(dot);
    const glint = mesh(new THREE.CircleGeometry(0.0025, 8), mat(0xffffff, { emissive: 0xffffff }), 0.004, 0.005, 0.0246); pupil.add(glint);
    // the lid: a skin-coloured shell over the eye that rotates down to close it
    const lidPivot = new THREE.Group(); g.add(lidPivot);
    const lid = mesh(new THREE.SphereGeometry(0.027, 24, 16, 0, 2 * Math.PI, 0, Math.PI / 2), skin);
    lidPivot.add(lid);
    const lash = mesh(new THREE.TorusGeometry(0.0265, 0.002, 6, 32, Math.PI), hairMat); lash.rotation.x = Math.PI / 2; lidPivot.add(lash);   // along the lid's front rim
    const brow = mesh(new THREE.BoxGeometry(0.042, 0.009, 0.01), hairMat, side * 0.045, 0.15, 0.107);
    head.add(brow);
    eyes[name] = { pupil, lidPivot, brow, side };
  }
  // mouth: a dark opening that grows with ParamMouthOpenY and widens with the smile
  const mouth = new THREE.Group(); mouth.position.set(0, 0.045, 0.112); head.add(mouth);
  const mouthInner = mesh(new THREE.CircleGeometry(0.025, 32), mat(0x8a2b35, { side: THREE.DoubleSide })); mouth.add(mouthInner);
  mouth.rotation.x = -0.25;

  function apply(pose, extra = {}) {
    const headK = extra.headShare ?? 0.6;
    // yaw about +Y turns the face (+Z) towards +X, the screen's right; looking up is -X rotation
    // for a model facing +Z; clockwise on screen (top to the right) is -Z rotation
    head.rotation.set(-pose.pitch * DEG * headK, pose.yaw * DEG * headK, -pose.roll * DEG * headK, "YXZ");
    neck.rotation.set(-pose.pitch * DEG * (1 - headK), pose.yaw * DEG * (1 - headK), -pose.roll * DEG * (1 - headK), "YXZ");
    chest.rotation.set(extra.breath || 0, pose.yaw * DEG * 0.08, -pose.roll * DEG * 0.05, "YXZ");
    chest.position.y = 1.25 + (extra.breathLift || 0);
    const shapes = pose.shapes || {};
    for (const [name, e] of Object.entries(eyes)) {
      // the lid (the upper half-shell): -PI/2 rad = open (folded back), +PI/2 = closed over the eye
      const open = name === "L" ? pose.eyeL : pose.eyeR;
      const closed = Math.min(1, Math.max(0, 1 - open));
      e.lidPivot.rotation.x = -Math.PI / 2 + (0.35 + 0.65 * closed) * Math.PI;
      e.pupil.position.set(pose.eyeX * 0.01, pose.eyeY * 0.008, 0);
      e.pupil.visible = closed < 0.75;           // the flat iris would show through the closed lid
      const brow = name === "L" ? pose.browL : pose.browR;
      e.brow.position.y = 0.15 + brow * 0.01 + (shapes.browInnerUp || 0) * 0.006;
      e.brow.rotation.z = e.side * brow * -0.15;
    }
    const v = pose.vowels || {};
    const open = Math.max(pose.mouthOpen, v.aa || 0, (v.oh || 0) * 0.8, (v.ou || 0) * 0.5, (v.ee || 0) * 0.5, (v.ih || 0) * 0.4);
    const wide = 1 + 0.35 * pose.mouthForm + 0.4 * ((v.ih || 0) + (v.ee || 0)) - 0.4 * ((v.ou || 0) + (v.oh || 0) * 0.5);
    mouth.scale.set(Math.max(0.3, wide), 0.12 + open * 0.9, 1);
  }
  apply({ yaw: 0, pitch: 0, roll: 0, eyeL: 1, eyeR: 1, eyeX: 0, eyeY: 0, browL: 0, browR: 0, mouthOpen: 0, mouthForm: 0, vowels: {}, shapes: {} });
  root.updateMatrixWorld(true);
  return { kind: "default", scene: root, head, neck, chest, apply, update() {},
           headCentre: () => face.getWorldPosition(new THREE.Vector3()), headHeight: 0.26,
           focus: face.getWorldPosition(new THREE.Vector3()) };
}
