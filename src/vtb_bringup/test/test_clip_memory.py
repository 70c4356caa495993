"""`./vtb run --clip` keeps its frames compressed: 150 raw VGA frames were 138 MB of the graph's
RSS (over the 400 MB goal of issue 16); JPEG keeps ~50 KB a frame, decoded as it plays."""
import gc
import tracemalloc

import numpy as np

from vtb_bringup.sources import clip_source

N, SIZE = 12, (640, 480)
RAW = N * SIZE[0] * SIZE[1] * 3


def test_clip_holds_compressed_frames_and_plays_them_back():
    clip_source(frames=1, size=SIZE)     # the imports and the renderer's caches, out of the count
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        source = clip_source(frames=N, size=SIZE)
        gc.collect()     # the renderer's cyclic garbage
        held = tracemalloc.get_traced_memory()[0] - before   # numpy's buffers are traced too
    finally:
        tracemalloc.stop()
    assert held < RAW / 5, f"the clip holds {held / 1e6:.1f} MB for {N} frames (raw: {RAW / 1e6:.1f} MB)"
    frames = list(source.frames())
    assert len(frames) == N and len(list(source.frames())) == N    # every pass plays them all
    for f in frames:
        assert f.rgb.shape == (SIZE[1], SIZE[0], 3) and f.rgb.dtype == np.uint8
        assert f.camera_matrix.shape == (3, 3) and set(f.truth) == {"ypr_deg", "gaze_deg", "eyes_closed"}
    assert frames[0].rgb.std() > 10    # a picture, not a blank
