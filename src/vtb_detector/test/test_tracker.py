"""Face ids: stable while matched, new after a loss, distinct between faces."""
import re

from vtb_detector.tracker import IouTracker, box_iou


def test_box_iou():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0
    assert abs(box_iou([0, 0, 10, 10], [5, 0, 10, 10]) - 50 / 150) < 1e-9


def test_ids_follow_moving_faces_and_a_lost_face_gets_a_new_id():
    t = IouTracker()
    a, b = t.update([[0, 0, 100, 100], [300, 0, 100, 100]])
    assert re.fullmatch(r"[a-f][0-9a-f]{3}", a) and a != b
    for step in range(1, 10):  # both move 5 px a frame, listed in swapped order
        ids = t.update([[300 + 5 * step, 0, 100, 100], [5 * step, 0, 100, 100]])
        assert ids == [b, a]
    t.update([])  # both lost
    (c,) = t.update([[45, 0, 100, 100]])
    assert c not in (a, b)
