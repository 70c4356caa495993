"""sensor_msgs/Image conversion and the rejection of malformed images."""
import numpy as np
import pytest
from sensor_msgs.msg import Image

from vtb_detector.image_msg import ImageError, image_to_rgb, rgb_to_image


def make(encoding, array):
    msg = Image(height=array.shape[0], width=array.shape[1], encoding=encoding)
    msg.step = array.shape[1] * (array.shape[2] if array.ndim == 3 else 1)
    msg.data = array.tobytes()
    return msg


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def test_rgb_round_trip(rgb):
    msg = rgb_to_image(Image, rgb)
    assert (msg.width, msg.height, msg.encoding, msg.step) == (64, 48, "rgb8", 192)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_bgr_and_bgra_are_converted_to_rgb(rgb):
    np.testing.assert_array_equal(image_to_rgb(make("bgr8", rgb[:, :, ::-1].copy())), rgb)
    bgra = np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(image_to_rgb(make("bgra8", bgra)), rgb)


def test_mono_is_expanded_to_three_channels(rgb):
    out = image_to_rgb(make("mono8", rgb[:, :, 0].copy()))
    assert out.shape == (48, 64, 3)
    np.testing.assert_array_equal(out[:, :, 1], rgb[:, :, 0])


def test_padded_rows_are_respected(rgb):
    padded = np.zeros((48, 64 * 3 + 8), np.uint8)
    padded[:, :192] = rgb.reshape(48, 192)
    msg = Image(height=48, width=64, encoding="rgb8", step=200, data=padded.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


@pytest.mark.parametrize("mutate, reason", [
    (lambda m: setattr(m, "encoding", "yuv422_yuy2"), "unsupported encoding"),
    (lambda m: setattr(m, "encoding", "32FC1"), "unsupported encoding"),
    (lambda m: setattr(m, "data", m.data[: len(m.data) // 2]), "shorter than height x step"),
    (lambda m: (setattr(m, "width", 0), setattr(m, "height", 0), setattr(m, "data", b"")), "zero-sized"),
    (lambda m: setattr(m, "step", 10), "step 10 is less than"),
])
def test_malformed_images_raise_a_clear_error(rgb, mutate, reason):
    msg = rgb_to_image(Image, rgb)
    mutate(msg)
    with pytest.raises(ImageError, match=reason):
        image_to_rgb(msg)
