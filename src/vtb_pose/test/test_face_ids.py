"""vtb_common.face_ids: any face id maps to valid ROS names, deterministically, and the
detector's ids keep their names."""
import pytest
from rclpy.validate_full_topic_name import validate_full_topic_name
from rclpy.validate_topic_name import validate_topic_name

from vtb_common.face_ids import face_frame, face_token, face_topic_token

IDS = ["f3a9", "1a2b", "0", "", "é", "/", "a" * 10000, "F3A9", "a b", "faces/x", "id_1a2b", "_", "\U0001F600",
       "a__b", "x" * 33]


@pytest.mark.parametrize("face_id", IDS)
def test_every_id_gives_a_valid_topic_and_a_short_frame(face_id):
    validate_topic_name(f"faces/{face_topic_token(face_id)}/head_pose")   # raises when invalid
    validate_full_topic_name(f"/vtb/faces/{face_topic_token(face_id)}/head_pose")
    frame = face_frame("face_", face_id)
    assert frame.isascii() and "/" not in frame and " " not in frame and len(frame) <= 5 + 32
    assert face_token(face_id) == face_token(face_id)   # deterministic (no per-process salt)


def test_the_detectors_ids_and_short_hex_keep_their_names():
    assert face_token("f3a9") == "f3a9" and face_topic_token("f3a9") == "f3a9"
    assert face_frame("face_", "f3a9") == "face_f3a9" and face_frame("gaze_", "1a2b") == "gaze_1a2b"
    assert face_topic_token("1a2b") == "id_1a2b" and face_topic_token("0") == "id_0"
    assert face_token("") == "da39a3ee"   # sha1 of no bytes: the documented hash
    assert face_token("F3/a9").startswith("3_a9_")


def test_different_ids_give_different_names():
    assert len({face_topic_token(i) for i in IDS}) == len(IDS)
    assert len({face_token(i) for i in IDS}) == len(IDS)
    assert face_token("a" * 10000) != face_token("a" * 9999)
