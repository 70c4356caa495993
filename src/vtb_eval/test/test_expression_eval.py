"""vtb eval expressions' scoring: openness from 68 labelled points, rank correlation, and the
whole run on a data folder made from renders of known eyelids and jaw (CI has no ../shared)."""
import json

import numpy as np
import pytest

from vtb_eval.expression_eval import (format_table, label_agreement, label_openness, ranges, run_expression_eval,
                                     spearman)


def face68(eye=0.3, mouth=0.1, lift=0.0):
    """68 iBUG points of a frontal face: eyes 30 px wide, lids `eye` x width apart; the inner
    lips `mouth` x the outer-eye-corner distance (100 px) apart, the mouth corners `lift` x that
    distance above the lips' centre."""
    p = np.zeros((68, 2))
    p[48], p[54] = (125, 180 - 100 * lift), (175, 180 - 100 * lift)
    h, g = 15 * eye, 50 * mouth
    # right eye: outer 36, upper 37 38, inner 39, lower 40 41; left: inner 42, upper 43 44, outer 45, lower 46 47
    p[36:42] = [(100, 100), (110, 100 - h), (120, 100 - h), (130, 100), (120, 100 + h), (110, 100 + h)]
    p[42:48] = [(170, 100), (180, 100 - h), (190, 100 - h), (200, 100), (190, 100 + h), (180, 100 + h)]
    for i, x in zip((61, 62, 63), (140, 150, 160)):
        p[i], p[128 - i] = (x, 180 - g), (x, 180 + g)
    return p


def test_label_openness_reads_eyes_and_mouth():
    o = label_openness(face68(eye=0.3, mouth=0.1))
    assert o["eye_right"] == pytest.approx(0.3, abs=0.02) and o["eye_left"] == pytest.approx(0.3, abs=0.02)
    assert o["mouth"] == pytest.approx(0.1, abs=0.01)
    shut = label_openness(face68(eye=0.0, mouth=0.0))
    assert shut["eye_right"] == pytest.approx(0.0, abs=1e-9) and shut["mouth"] == pytest.approx(0.0, abs=1e-9)
    # the corners' lift, along the face's own up: a smile > 0, a frown < 0, the same tilted 30 degrees
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    for lift in (0.1, -0.05):
        face = face68(lift=lift)
        assert label_openness(face)["mouth_form"] == pytest.approx(lift, abs=1e-9)
        assert label_openness(face @ np.array([[c, s], [-s, c]]))["mouth_form"] == pytest.approx(lift, abs=1e-9)


def test_spearman_ranks_and_refuses_constant_input():
    assert spearman([1, 2, 3, 4], [10, 20, 25, 90]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1, 1], [1, 2, 3, 4]) is None and spearman([1, 2], [1, 2]) is None


def test_ranges_take_resting_faces_and_wide_mouths_by_their_labels():
    def row(mouth_label, pose, **sent):
        values = dict(eye_closure=0.0, mouth_open=0.0, mouth_form=0.0, vowel_max=0.0) | sent
        return {"label": {"mouth": mouth_label}, "pose": pose, "sent": values}
    rows = [row(0.01, None, mouth_form=-0.3),              # resting, a frown read: outside
            row(0.02, [5.0, -10.0, 0.0], mouth_open=0.05),  # resting, within
            row(0.02, [5.0, 40.0, 0.0], mouth_open=0.9),   # turned 40 deg: not a resting face here
            row(0.10, None, mouth_open=0.5),               # neither
            row(0.35, None, mouth_open=0.85), row(0.4, None, mouth_open=0.6),
            row(0.8, [0.0, 74.0, 0.0], mouth_open=0.1),    # a profile: the label's ratio is foreshortened
            {"label": {"mouth": 0.0}, "pose": None}]        # no face found: left out
    r = ranges(rows)
    assert r["rest"]["mouth_open"]["faces"] == 2 and r["rest"]["mouth_open"]["within"] == 1.0
    assert r["rest"]["mouth_form"]["within"] == 0.5 and r["rest"]["mouth_form"]["median"] == pytest.approx(0.15)
    assert r["wide_mouth"] == {"faces": 2, "median": pytest.approx(0.725), "within": 0.5}
    assert r["wide_mouth_any_pose"] == {"faces": 3, "median": pytest.approx(0.6), "within": pytest.approx(1 / 3)}


def test_two_labellings_bound_what_a_measure_can_reach():
    """Two noisy labellings of the same true openness agree less than each agrees with the truth;
    a measure that is the truth ranks above their agreement against either."""
    rng = np.random.default_rng(3)
    truth = rng.uniform(0, 0.3, 200)
    rows = []
    for i, t in enumerate(truth):
        label = {"mouth": t + rng.normal(0, 0.05), "eye_right": t, "eye_left": t + 0.01}
        fitted = {"mouth": t + rng.normal(0, 0.05), "eye_right": t, "eye_left": t + 0.01}
        rows.append({"label": label, "label_fitted": fitted if i % 10 else None, "yaw": 0.0,
                     "pred": {"exact": {"mouth": t, "eye_right": t, "eye_left": t + 0.01}}})
    a = label_agreement(rows, ["exact"])
    assert a["faces"] == 180, "only faces with both labellings"
    assert a["labels"]["mouth"] < a["exact"]["re-annotation"]["mouth"] and \
        a["labels"]["mouth"] < a["exact"]["fit"]["mouth"] < 1.0
    assert a["exact"]["re-annotation"]["eye"] == pytest.approx(1.0)
    assert label_agreement([dict(r, label_fitted=None) for r in rows], ["exact"]) is None


@pytest.fixture(scope="module")
def rendered_folder(tmp_path_factory):
    """300-VW-style stills (imgs/*.jpg + annot/*.pts) of the rendered head with its jaw open by
    0..1; the labels' inner lips from the jaw (their gap grows with it), eyes as rendered."""
    import cv2
    from vtb_detector.pipeline import FacePipeline
    from vtb_eval.real import to68
    from vtb_eval.render import HeadRenderer, default_intrinsics, pose_from_ypr
    root = tmp_path_factory.mktemp("expressions")
    imgs, annot = root / "mmpose" / "300vw" / "001" / "imgs", root / "mmpose" / "300vw" / "001" / "annot"
    imgs.mkdir(parents=True)
    annot.mkdir(parents=True)
    renderer, k, size = HeadRenderer(), default_intrinsics(640, 480), (640, 480)
    pipeline = FacePipeline(landmark_model="face_mesh")   # labels from the other model than the measured
    for i, jaw in enumerate(np.linspace(0.0, 1.0, 6)):
        rgb = renderer.render(pose_from_ypr(0, 0, 0), np.array([0.0, 0.0, 0.5]), k, size, jaw=float(jaw))
        p68 = to68(pipeline.process_still(rgb)[0].landmarks)
        cv2.imwrite(str(imgs / f"{i:06d}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        pts = "\n".join(f"{x + 0.5:.3f} {y + 0.5:.3f}" for x, y in p68)
        (annot / f"{i:06d}.pts").write_text(f"version: 1\nn_points: 68\n{{\n{pts}\n}}\n")
    return root


def test_a_run_on_rendered_jaws_ranks_the_mouth(rendered_folder):
    r = run_expression_eval(rendered_folder, with_mediapipe=False, echo=lambda m: None)
    assert r["faces"] == 6
    geometry, shapes = r["methods"]["vtb geometry"], r["methods"]["vtb blendshapes"]
    assert geometry["faces"] == shapes["faces"] == 6
    assert geometry["mouth_rank_correlation"] > 0.9 and shapes["mouth_rank_correlation"] > 0.9
    text = format_table(r)
    assert "vtb geometry" in text and "right eye against left eye" in text and "goal (issue 21)" in text
    # what a new user's first frame sends, for every face found (the rendered lips never touch
    # and never open past 0.3: no resting face or widest mouth among them)
    assert "first frame" in text and all(0.0 <= row["sent"]["mouth_open"] <= 1.0 for row in r["rows"])
    assert [row["sent"]["mouth_open"] for row in r["rows"]][-1] > [row["sent"]["mouth_open"] for row in r["rows"]][0]
    # the form sent is the blendshape model's smile - frown, as the gaze node gives FaceState
    assert all(row["sent"]["mouth_form"] == pytest.approx(row["pred"]["vtb blendshapes"]["mouth_form"], abs=1e-6)
               for row in r["rows"])
    assert "mouth_form_rank_correlation" in geometry and "form" in text
    json.dumps({k: v for k, v in r.items() if k != "rows"})   # the JSON the CLI writes
