"""Face detectors: an RGB frame in, candidate face boxes ``(K, 4)`` as pixel ``x0, y0, x1, y1`` out.

``haar`` (OpenCV's bundled Viola-Jones cascade) is always available; ``mediapipe`` (BlazeFace, more
robust to pose and light) needs the optional ``face`` extra. Both run offline with the models their
wheels ship.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from emofuse.core.registry import ConfigError, Registry

FACE_DETECTORS: Registry[FaceDetector] = Registry("face detector")


class FaceDetector:
    Params: ClassVar[type[BaseModel]]
    registry_name: ClassVar[str]

    def __call__(self, rgb: np.ndarray, min_face: float | None = None, max_face: float | None = None) -> np.ndarray:
        """Boxes of the faces in ``rgb``; ``min_face`` and ``max_face`` (fractions of the shorter side) skip smaller
        and larger faces where the detector can use them to save time."""
        raise NotImplementedError


def require_mediapipe(what: str):
    try:
        import mediapipe
    except ImportError:
        raise ConfigError(f"{what} needs mediapipe: pip install 'emofuse[face]' (it pins numpy<2)") from None
    return mediapipe


@FACE_DETECTORS.register("haar")
class HaarDetector(FaceDetector):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        cascade: str = Field("haarcascade_frontalface_default.xml", description="a cascade bundled with OpenCV")
        detect_size: int | None = Field(
            240, gt=0, description="downscale so the longer side has this many pixels before detecting (speed)"
        )
        scale_factor: float = Field(1.1, gt=1.0)
        min_neighbors: int = Field(5, ge=1)
        min_face: float = Field(0.1, gt=0, lt=1, description="smallest face side, as a fraction of the shorter image side")

    def __init__(self, params: Params):
        import cv2

        self.params = params
        self._cv2 = cv2
        path = f"{cv2.data.haarcascades}{params.cascade}"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ConfigError(f"face detector 'haar': cannot load cascade {path}")

    def __call__(self, rgb: np.ndarray, min_face: float | None = None, max_face: float | None = None) -> np.ndarray:
        cv2, p = self._cv2, self.params
        scale = 1.0
        if p.detect_size is not None and max(rgb.shape[:2]) > p.detect_size:
            scale = p.detect_size / max(rgb.shape[:2])
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        side = max(int((min_face or p.min_face) * min(gray.shape)), 12)
        largest = (int(max_face * min(gray.shape)) + 1,) * 2 if max_face is not None else (0, 0)  # (0, 0): no limit
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=p.scale_factor, minNeighbors=p.min_neighbors,
                                               minSize=(side, side), maxSize=largest)
        if len(boxes) == 0:
            return np.zeros((0, 4))
        boxes = np.asarray(boxes, dtype=np.float64)
        boxes[:, 2:] += boxes[:, :2]  # x, y, w, h -> x0, y0, x1, y1
        return boxes / scale


@FACE_DETECTORS.register("mediapipe")
class MediapipeDetector(FaceDetector):
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        min_confidence: float = Field(0.5, gt=0, lt=1)
        model_selection: int = Field(0, ge=0, le=1, description="0: faces within ~2 m, 1: within ~5 m")

    def __init__(self, params: Params):
        mp = require_mediapipe("face detector 'mediapipe'")
        self.params = params
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=params.model_selection, min_detection_confidence=params.min_confidence
        )

    def __call__(self, rgb: np.ndarray, min_face: float | None = None, max_face: float | None = None) -> np.ndarray:
        h, w = rgb.shape[:2]
        result = self._detector.process(np.ascontiguousarray(rgb))
        boxes = []
        for det in result.detections or []:
            b = det.location_data.relative_bounding_box
            boxes.append([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h])
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
