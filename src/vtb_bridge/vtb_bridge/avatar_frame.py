"""What every avatar output sends: one face's parameters for one image. No rclpy here.

The bridge node builds an AvatarFrame per image from vtb's topics; each output (Socket.IO,
the built-in page, VMC, VTube Studio, robot joints) turns it into its own protocol.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class AvatarFrame:
    face_id: str
    stamp: float                        # seconds, the image's stamp
    params: dict = field(default_factory=dict)   # Live2D standard names -> values (ParamAngleX, ...)
    # the DeepVTB/OpenVtuber NodeServer's result_data fields:
    euler: tuple = (0.0, 0.0, 0.0)      # head (pitch, yaw, roll), degrees
    eye: tuple = (0.0, 0.0)             # gaze (theta, phi), radians: yaw and pitch relative to the head
    mouth: float = 0.0                  # mouth open, 0..1
    blink: tuple = (1.0, 1.0)           # (left, right) eye openness, 0 closed .. 1 open
    tracked: bool = True                # False while easing back to neutral after the face was lost
    # the 52 ARKit blendshapes (perfect sync), 0..1, named for the avatar's own sides after the
    # mirror choice (eyeBlinkLeft: the avatar's own left eye); empty when vtb computes none
    blendshapes: dict = field(default_factory=dict)

    def result_data(self) -> dict:
        """The NodeServer's `result_data` payload, exactly its shape, with vtb's fields beside it."""
        return {"euler": [float(v) for v in self.euler], "eye": [float(v) for v in self.eye],
                "mouth": float(self.mouth), "blink": [float(v) for v in self.blink],
                "params": {k: float(v) for k, v in self.params.items()}, "face_id": self.face_id,
                "stamp": float(self.stamp), "blendshapes": {k: float(v) for k, v in self.blendshapes.items()}}


def finite(v, default=0.0) -> float:
    """v as a float, or `default` where it is not a finite number: what every output sends."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default
