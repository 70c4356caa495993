// Load a .vrm with the real three.js GLTFLoader + @pixiv/three-vrm's VRMLoaderPlugin in Node and
// print what three-vrm made of it as JSON (meta version, humanoid bones, expressions, lookAt).
// Usage: node load_vrm.mjs FILE.vrm
// Node has no DOM: the file is given to GLTFLoader.parse as an ArrayBuffer (no fetch), and the
// fixture has no textures, so no image decoding is needed; `self` is the one browser global the
// loaders touch.
import { readFileSync } from 'node:fs';

globalThis.self ??= globalThis;

const THREE = await import('three');
const { GLTFLoader } = await import('three/examples/jsm/loaders/GLTFLoader.js');
const { VRMLoaderPlugin } = await import('@pixiv/three-vrm');

const file = readFileSync(process.argv[2]);
const data = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength);
const loader = new GLTFLoader();
loader.register((parser) => new VRMLoaderPlugin(parser));
const gltf = await loader.parseAsync(data, '');
const vrm = gltf.userData.vrm;
if (!vrm) {
  console.error('three-vrm found no VRM in the file');
  process.exit(1);
}
const bones = Object.entries(vrm.humanoid.humanBones).filter(([, b]) => b && b.node).map(([n]) => n);
// each expression at 1 alone, one update: the meshes whose morph weights it moved
const em = vrm.expressionManager;
const binds = {};
for (const e of em.expressions) {
  for (const o of em.expressions) em.setValue(o.expressionName, 0);
  em.setValue(e.expressionName, 1);
  vrm.update(1 / 60);
  binds[e.expressionName] = [];
  vrm.scene.traverse((o) => {
    if (o.morphTargetInfluences?.some((w) => w > 0)) binds[e.expressionName].push(o.name);
  });
}
for (const o of em.expressions) em.setValue(o.expressionName, 0);
vrm.update(1 / 60);
const worldX = (bone) => vrm.humanoid.getRawBoneNode(bone).getWorldPosition(new THREE.Vector3()).x;
const box = new THREE.Box3().setFromObject(vrm.scene);
console.log(JSON.stringify({
  metaVersion: vrm.meta.metaVersion,
  name: vrm.meta.name ?? vrm.meta.title,
  bones,
  expressions: em.expressions.map((e) => e.expressionName),
  binds,
  leftEyeX: worldX('leftEye'),
  rightEyeX: worldX('rightEye'),
  lookAtType: vrm.lookAt?.applier?.constructor?.type, // VRMLookAtBoneApplier.type = "bone"
  height: box.max.y - box.min.y,
}));
