"""max_pixels: an image's size is read from its header and a too large one is refused before
it is decoded (a PNG bomb: a few hundred KB that inflate to 16000x16000)."""
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from vtb_detector.image_msg import (DEFAULT_MAX_PIXELS, ImageError, ImageTooLarge, compressed_size,
                                    compressed_to_rgb, image_to_rgb, rgb_to_image)


def png_bomb(width, height, complete=False):
    """A PNG whose IHDR says width x height RGB; its IDAT holds a few rows of zeros, or with
    `complete` every row (a valid image: 8000x8000 is 187 KB that cv2 decodes in about 1 s)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    z, rows = zlib.compressobj(9), bytes((width * 3 + 1) * 100)   # 100 rows of filter 0, black
    idat = b"".join(z.compress(rows) for _ in range(height // 100 if complete else 1)) + z.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def encoded(ext, width, height):
    ok, buf = cv2.imencode(ext, np.full((height, width, 3), 128, np.uint8))
    return buf.tobytes()


@pytest.mark.parametrize("side, complete", [(8000, True), (16000, False)])
def test_a_png_bomb_is_refused_from_its_header_without_decoding(side, complete):
    bomb = png_bomb(side, side, complete)
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(ImageTooLarge, match="max_pixels|refused before decoding"):
        compressed_to_rgb(CompressedImage(format="png", data=bomb), max_pixels=DEFAULT_MAX_PIXELS)
    assert time.perf_counter() - start < 0.05   # the header only: no 192-768 MB allocation


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_the_size_comes_from_the_header_and_the_limit_is_inclusive(ext):
    data = encoded(ext, 120, 80)
    assert compressed_size(data) == (120, 80)
    msg = CompressedImage(format=ext[1:], data=data)
    assert compressed_to_rgb(msg, max_pixels=120 * 80).shape == (80, 120, 3)
    with pytest.raises(ImageTooLarge, match="120x80 is 9600 pixels, more than max_pixels = 9599"):
        compressed_to_rgb(msg, max_pixels=120 * 80 - 1)


def test_a_header_that_gives_no_size_is_refused_clearly():
    with pytest.raises(ImageError, match="cannot read the size of 10 bytes"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b"not a jpeg"), max_pixels=DEFAULT_MAX_PIXELS)


def test_raw_images_over_the_limit_are_refused():
    msg = rgb_to_image(Image, np.zeros((80, 120, 3), np.uint8))
    assert image_to_rgb(msg, max_pixels=9600).shape == (80, 120, 3)
    with pytest.raises(ImageTooLarge, match="more than max_pixels = 9599"):
        image_to_rgb(msg, max_pixels=9599)
    # the size is checked before the data: a header claiming 16000x16000 with no data
    with pytest.raises(ImageTooLarge):
        image_to_rgb(Image(width=16000, height=16000, encoding="rgb8", step=48000), max_pixels=DEFAULT_MAX_PIXELS)
