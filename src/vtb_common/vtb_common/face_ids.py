"""Names made from a face id (Face.msg's `id`), valid whatever the id is.

vtb_detector's ids are four hex digits, the first a letter ("f3a9"), and name their topics and
frames as they are. But Face.msg allows "1a2b" or "0", which are not ROS topic tokens (a token
must not start with a digit), and another publisher may send anything: '', '/', unicode, 10,000
characters. So every per-face name goes through this mapping, deterministic and documented in
Face.msg:

  token        `face_token(id)`: the id itself when it is 1 to 32 of [a-z0-9] ("f3a9", "1a2b");
               anything else becomes its characters with each run outside [a-z0-9] replaced by one
               '_' (cut to 16 characters, '_' stripped at the ends), then '_' and the first 8 hex
               digits of the SHA-1 of the id's UTF-8 bytes: "F3/a9" -> "3_a9_<hash>", "" and "é"
               -> "<hash>". A kept id has no '_' and a mapped one always ends in '_<8 hex>' (or is
               the bare hash), so two ids share a token only on a 32-bit hash collision.
  TF frames    prefix + token: face_<token> (vtb_pose), gaze_<token> (vtb_gaze): `face_frame`.
  topic token  `face_topic_token(id)`: the token when it starts with a letter, else 'id_' + token
               ("f3a9" -> "f3a9", "1a2b" -> "id_1a2b"): faces/<topic token>/head_pose.
"""
import hashlib
import re

_KEEP = re.compile(r"[a-z0-9]{1,32}")
_OTHER = re.compile(r"[^a-z0-9]+")


def face_token(face_id: str) -> str:
    """The id itself when it is 1-32 of [a-z0-9], else a cleaned prefix plus a short hash."""
    if _KEEP.fullmatch(face_id):
        return face_id
    digest = hashlib.sha1(face_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    cleaned = _OTHER.sub("_", face_id)[:16].strip("_")
    return f"{cleaned}_{digest}" if cleaned else digest


def face_topic_token(face_id: str) -> str:
    """A valid ROS topic token for the id: its token, with 'id_' before one that starts with a digit."""
    token = face_token(face_id)
    return token if token[0].isalpha() else "id_" + token


def face_frame(prefix: str, face_id: str) -> str:
    """A per-face TF frame id: prefix + token (face_f3a9, gaze_f3a9)."""
    return prefix + face_token(face_id)
