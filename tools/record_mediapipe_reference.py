#!/usr/bin/env python3
"""Record MediaPipe's landmarks of the astronaut photo as the reference for vtb's landmarks.

    source activate.bash && python tools/record_mediapipe_reference.py [--draw out.png]

Runs Google MediaPipe's FaceMesh (static image mode, in .venv-mediapipe; created on first use)
on skimage.data.astronaut(), once with refine_landmarks=True (478 points: the attention mesh
model with irises) and once without (468 points: the plain mesh model), and writes both in
pixels, rounded to 0.01, to src/vtb_detector/test/data/astronaut_mediapipe_478.json.
--draw also writes the image with the points drawn, to check them by eye.
"""
import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "vtb_detector" / "test" / "data" / "astronaut_mediapipe_478.json"


def landmarks_of(image, refine):
    from vtb_eval.mediapipe_peer import run_mediapipe
    result = run_mediapipe(image[None], refine_landmarks=refine, static_image_mode=True,
                           max_num_faces=1, warmup=0, root=ROOT, echo=lambda m: print(m, file=sys.stderr))
    points = result["landmarks"][0]
    if not np.isfinite(points).all():
        raise SystemExit(f"MediaPipe found no face in the astronaut photo (refine={refine})")
    return points, result["version"]


def points_json(points):
    # one point a line: the file stays readable and its diffs small
    return "[\n" + ",\n".join(f"    [{x:.2f}, {y:.2f}]" for x, y in points) + "\n  ]"


def draw(image, mesh478, mesh468, path):
    import cv2
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    canvas = cv2.resize(canvas, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    for x, y in mesh468:
        cv2.circle(canvas, (round(4 * x), round(4 * y)), 2, (255, 128, 0), -1)   # blue: 468
    for x, y in mesh478[:468]:
        cv2.circle(canvas, (round(4 * x), round(4 * y)), 2, (0, 255, 0), -1)     # green: 478
    for i, colour in ((468, (0, 0, 255)), (473, (0, 255, 255))):   # iris: red right, yellow left
        for x, y in mesh478[i:i + 5]:
            cv2.circle(canvas, (round(4 * x), round(4 * y)), 3, colour, -1)
    # the face region only, at 4x
    crop = canvas[4 * 60:4 * 200, 4 * 150:4 * 300]
    cv2.imwrite(str(path), crop)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--draw", type=Path, help="also write the face with the points drawn (PNG)")
    args = ap.parse_args()

    import skimage
    from skimage import data
    image = data.astronaut()
    mesh478, version = landmarks_of(image, refine=True)
    mesh468, _ = landmarks_of(image, refine=False)
    options = "static_image_mode=True, max_num_faces=1, min_detection_confidence=0.5"
    how = (f"mediapipe {version} (requirements/mediapipe.txt), mp.solutions.face_mesh.FaceMesh("
           f"{options}, refine_landmarks=True) for landmarks_478 and refine_landmarks=False for "
           f"landmarks_468, one process() call each on skimage.data.astronaut() (512x512 RGB, "
           f"scikit-image {skimage.__version__}); recorded {datetime.date.today().isoformat()} with "
           f"`python tools/record_mediapipe_reference.py` (vtb_eval.mediapipe_peer.run_mediapipe)")
    header = {
        "image": "skimage.data.astronaut()",
        "image_size": [int(image.shape[1]), int(image.shape[0])],
        "how": how,
        "mediapipe_version": version,
        "pixels": "x = MediaPipe's normalized x * width, y = normalized y * height; 0 is the "
                  "image's left/top edge (pixel i's centre is at i + 0.5)",
        "layout": "MediaPipe face mesh: 0..467 mesh; 468..472 the subject's right iris "
                  "(centre, then 4 on its edge), 473..477 the subject's left iris",
    }
    body = ",\n".join([f'  "{k}": {json.dumps(v)}' for k, v in header.items()]
                      + [f'  "landmarks_478": {points_json(mesh478)}',
                         f'  "landmarks_468": {points_json(mesh468)}'])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("{\n" + body + "\n}\n")
    print(f"wrote {args.out}")
    if args.draw:
        draw(image, mesh478, mesh468, args.draw)
        print(f"wrote {args.draw}")


if __name__ == "__main__":
    main()
