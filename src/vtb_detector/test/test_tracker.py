"""Face ids and box overlap (ids kept while tracking, new after a loss: test_pipeline.py)."""
import re

from vtb_detector.tracker import box_iou, new_face_id


def test_box_iou():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0
    assert abs(box_iou([0, 0, 10, 10], [5, 0, 10, 10]) - 50 / 150) < 1e-9


def test_new_face_ids_are_ros_name_tokens_and_avoid_taken_ones():
    taken = set()
    for _ in range(200):
        fid = new_face_id(taken)
        assert re.fullmatch(r"[a-f][0-9a-f]{3}", fid) and fid not in taken
        taken.add(fid)
