"""Fixed-size square face crops (the input of video backbones such as a 3D ResNeXt), and the way back to the frame."""

from __future__ import annotations

import numpy as np


def _square(box: np.ndarray, size: int, margin: float) -> tuple[float, float, float]:
    """Scale (crop pixels per frame pixel) and centre of the square crop around ``box``."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1.0 + margin)
    return size / side, (x0 + x1) / 2, (y0 + y1) / 2


def crop_face(rgb: np.ndarray, box: np.ndarray, size: int = 112, margin: float = 0.2) -> np.ndarray:
    """A ``size`` x ``size`` RGB crop centred on ``box``, its side the box's longer side enlarged by ``margin``.

    One affine warp does the crop and the resize; parts of the square outside the frame are black,
    so a face at the border keeps its position and scale in the crop.
    """
    import cv2

    scale, cx, cy = _square(box, size, margin)
    matrix = np.array([[scale, 0.0, size / 2 - scale * cx], [0.0, scale, size / 2 - scale * cy]])
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def crop_to_frame(xy: np.ndarray, box: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Map ``(..., 2)`` pixel coordinates in the crop made by ``crop_face(_, box, size, margin)`` back to the frame."""
    scale, cx, cy = _square(box, size, margin)
    return (np.asarray(xy, dtype=np.float64) - size / 2) / scale + np.array([cx, cy])
