"""Tracking the largest face through a clip: IoU association, the last box held through missed detections.

A per-frame detector flickers (a frame without a detection, a false positive elsewhere in the
image); following one face by overlap keeps crops and per-frame features on the same person.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DETECTED, HELD, NO_FACE = "detected", "held", "none"


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one ``x0, y0, x1, y1`` box with each row of ``boxes`` (K, 4)."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def largest(boxes: np.ndarray) -> np.ndarray:
    return boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]


class FaceTracker:
    """One face followed frame by frame.

    The track starts on the largest face. Each later frame takes the detection overlapping the track
    most (IoU >= ``iou_threshold``); without one the previous box is held, for at most ``max_hold``
    frames, after which the track is dropped and restarts on the largest face detected.
    """

    def __init__(self, iou_threshold: float = 0.3, max_hold: int = 15):
        self.iou_threshold, self.max_hold = iou_threshold, max_hold
        self.box: np.ndarray | None = None
        self.held = 0

    def update(self, detections: np.ndarray) -> str:
        dets = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
        pick = None
        if len(dets):
            if self.box is None or self.held >= self.max_hold:
                pick = largest(dets)
            else:
                overlap = iou(self.box, dets)
                if overlap.max() >= self.iou_threshold:
                    pick = dets[np.argmax(overlap)]
        if pick is not None:
            self.box, self.held = pick, 0
            return DETECTED
        if self.box is not None and self.held < self.max_hold:
            self.held += 1
            return HELD
        self.box = None
        return NO_FACE


def track_largest_face(detections: Sequence[np.ndarray], iou_threshold: float = 0.3,
                       max_hold: int = 15) -> tuple[np.ndarray, list[str]]:
    """Per frame, the tracked box (NaN row when there is none) and whether it was detected, held or absent."""
    tracker = FaceTracker(iou_threshold, max_hold)
    boxes = np.full((len(detections), 4), np.nan)
    status = []
    for i, dets in enumerate(detections):
        status.append(tracker.update(dets))
        if tracker.box is not None:
            boxes[i] = tracker.box
    return boxes, status
