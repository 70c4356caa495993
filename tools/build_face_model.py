#!/usr/bin/env python3
"""Build vtb_pose's 3D face model: the mean of the face mesh's own 3D landmarks over the real
faces available offline (skimage's astronaut and the six faces of insightface's group photo),
each in its own REP-155 face frame at a 63 mm pupil distance.

    source activate.bash && python tools/build_face_model.py

Writes src/vtb_pose/vtb_pose/data/face_model_478.npy (478 x 3 float32, metres)."""
import sys

import numpy as np
from skimage import data

from vtb_detector.pipeline import FacePipeline
from vtb_eval.sample_images import load_sample_rgb
from vtb_pose.face_model import MODEL_PATH, build_mean_face, to_face_frame


def landmarks_of(rgb, model, faces):
    # the mesh + iris, the landmarks data/face_model_478.npy was built from (the gaze node's eye model)
    pipeline = FacePipeline(detector=model, max_faces=faces, landmark_model="face_mesh")
    pipeline.process(rgb)
    found = pipeline.process(rgb)  # second pass: crops from the landmarks, as when tracking
    return [f.landmarks for f in found]


def main():
    sets = landmarks_of(data.astronaut(), "short", 1) + landmarks_of(load_sample_rgb("group_t1"), "full", 6)
    if len(sets) != 7:
        sys.exit(f"expected 7 faces, found {len(sets)}")
    model = build_mean_face(sets)
    spread = np.mean([np.linalg.norm(to_face_frame(s) - model, axis=1).mean() for s in sets])
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.save(MODEL_PATH, model.astype(np.float32))
    size = model.max(0) - model.min(0)
    print(f"{MODEL_PATH}: mean of {len(sets)} faces; extent x {size[0]*100:.1f} cm, y {size[1]*100:.1f} cm, "
          f"z {size[2]*100:.1f} cm; faces differ from the mean by {spread*1000:.1f} mm on average")


if __name__ == "__main__":
    main()
