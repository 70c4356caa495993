"""sensor_msgs/Image <-> numpy, behind one function each way.

cv_bridge where it is installed (a ROS install), rosbags.image otherwise (the wheel setup:
PyPI's `cv-bridge` is the ROS 1 package and breaks on numpy 2). Both are duck-typed on the
message, so this module needs no rclpy import to convert.
"""
from __future__ import annotations

import io
import warnings

import numpy as np

try:  # pragma: no cover - only on a ROS install
    from cv_bridge import CvBridge
    _BRIDGE = CvBridge()
except ImportError:
    _BRIDGE = None
    from rosbags.image.image import convert_color

# encodings vtb accepts, and their channel counts
SUPPORTED_ENCODINGS = {
    "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1,
}


# the detector's default max_pixels: four 4K frames' worth
DEFAULT_MAX_PIXELS = 4 * 3840 * 2160


class ImageError(ValueError):
    """An image message that cannot be used; the message says why."""


class ImageTooLarge(ImageError):
    """An image with more pixels than the configured limit, refused before it is decoded."""


def check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(f"{width}x{height} is {width * height} pixels, more than max_pixels = {max_pixels}")


def compressed_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a compressed image from its header alone (Pillow's Image.open is lazy:
    it reads PNG's IHDR, JPEG's SOF marker, ... and decodes no pixel), or ImageError."""
    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():   # Pillow warns above its own bomb limit; we decide here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError as e:   # over 2x Pillow's limit (179 M px): its size is not given
        raise ImageTooLarge(f"refused before decoding: {e}") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"cannot read the size of {len(data)} bytes of compressed image: {e}") from e


def check_image(msg, max_pixels: int | None = None) -> None:
    """Raise ImageError for a message no converter should be handed."""
    if msg.width == 0 or msg.height == 0:
        raise ImageError(f"zero-sized image ({msg.width}x{msg.height})")
    check_pixels(msg.width, msg.height, max_pixels)
    if msg.encoding not in SUPPORTED_ENCODINGS:
        raise ImageError(f"unsupported encoding {msg.encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    min_step = msg.width * SUPPORTED_ENCODINGS[msg.encoding]
    if msg.step < min_step:
        raise ImageError(f"step {msg.step} is less than width x channels = {min_step}")
    if len(msg.data) < msg.height * msg.step:
        raise ImageError(f"data is {len(msg.data)} bytes, shorter than height x step = {msg.height * msg.step}")


def image_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """An RGB uint8 array (H, W, 3) from a sensor_msgs/Image, or ImageError (ImageTooLarge
    above `max_pixels`)."""
    check_image(msg, max_pixels)
    try:
        if _BRIDGE is not None:  # pragma: no cover
            return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8")
        # rosbags.image's message_to_cvimage ignores `step` (padded rows come out sheared), so
        # the pixel view is built here, without a copy, and rosbags only converts the colours
        channels = SUPPORTED_ENCODINGS[msg.encoding]
        rows = np.frombuffer(msg.data, np.uint8, count=msg.height * msg.step).reshape(msg.height, msg.step)
        pixels = rows[:, :msg.width * channels].reshape(msg.height, msg.width, channels)
        if msg.encoding == "rgb8":
            return pixels
        return convert_color(pixels if channels > 1 else pixels[:, :, 0], msg.encoding, "rgb8")
    except Exception as e:  # the converters raise several types for malformed input
        raise ImageError(f"cannot convert {msg.encoding} image: {e}") from e


def compressed_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """An RGB uint8 array from a sensor_msgs/CompressedImage (JPEG or PNG), or ImageError.
    With `max_pixels` the size is read from the header first and a larger image is refused
    (ImageTooLarge) undecoded: a 182 KB PNG can inflate to 8000x8000 (a "PNG bomb")."""
    import cv2
    if len(msg.data) == 0:
        raise ImageError(f"empty compressed image (format {msg.format!r})")
    if max_pixels is not None:
        check_pixels(*compressed_size(bytes(msg.data)), max_pixels)
    bgr = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"cannot decode {len(msg.data)} bytes of compressed image (format {msg.format!r})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_image(msg_type, rgb: np.ndarray, header=None):
    """Fill a new sensor_msgs/Image (msg_type is the class) from an RGB uint8 array."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    msg = msg_type()
    if header is not None:
        msg.header = header
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = rgb.tobytes()
    return msg
