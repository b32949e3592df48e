"""MediaPipe face-mesh landmarks and the expression geometry read from them (optional ``face`` extra).

The geometry is a handful of named distances normalised by the inter-ocular distance, so they do
not depend on how large the face is in the image: mouth opening and width, lip-corner lift (smile),
eye opening, brow raise and the gap between the brows (frown).
"""

from __future__ import annotations

import numpy as np

from emofuse.features.visual.detect import require_mediapipe

# Face-mesh (468-point) indices; "right" is the subject's right (the left of the image).
EYE_R = {"outer": 33, "inner": 133, "upper": 159, "lower": 145}
EYE_L = {"outer": 263, "inner": 362, "upper": 386, "lower": 374}
MOUTH = {"corner_r": 61, "corner_l": 291, "upper_inner": 13, "lower_inner": 14}
BROW_R, BROW_L = 105, 334  # middle of each brow
BROW_INNER_R, BROW_INNER_L = 107, 336
NOSE_TIP, CHIN = 1, 152

GEOMETRY_NAMES = ("mouth_open", "mouth_width", "smile", "eye_open_r", "eye_open_l", "brow_raise_r", "brow_raise_l",
                  "brow_gap", "jaw_drop")


def expression_geometry(points: np.ndarray) -> np.ndarray:
    """(468, 2) pixel landmarks -> the GEOMETRY_NAMES values."""
    p = points.astype(np.float64)
    dist = lambda a, b: float(np.linalg.norm(p[a] - p[b]))
    iod = max(dist(EYE_R["outer"], EYE_L["outer"]), 1e-6)
    eye_r = (p[EYE_R["upper"]] + p[EYE_R["lower"]]) / 2
    eye_l = (p[EYE_L["upper"]] + p[EYE_L["lower"]]) / 2
    lips_mid_y = (p[MOUTH["upper_inner"], 1] + p[MOUTH["lower_inner"], 1]) / 2
    corners_y = (p[MOUTH["corner_r"], 1] + p[MOUTH["corner_l"], 1]) / 2
    return np.array([
        dist(MOUTH["upper_inner"], MOUTH["lower_inner"]) / iod,
        dist(MOUTH["corner_r"], MOUTH["corner_l"]) / iod,
        (lips_mid_y - corners_y) / iod,  # image y grows downwards: corners above the lip centre -> positive
        dist(EYE_R["upper"], EYE_R["lower"]) / max(dist(EYE_R["outer"], EYE_R["inner"]), 1e-6),
        dist(EYE_L["upper"], EYE_L["lower"]) / max(dist(EYE_L["outer"], EYE_L["inner"]), 1e-6),
        float(np.linalg.norm(p[BROW_R] - eye_r)) / iod,
        float(np.linalg.norm(p[BROW_L] - eye_l)) / iod,
        dist(BROW_INNER_R, BROW_INNER_L) / iod,
        dist(NOSE_TIP, CHIN) / iod,
    ], dtype=np.float32)


class FaceMeshLandmarks:
    """468 landmarks of the face in a crop, in the crop's pixels; None when the mesh finds no face."""

    def __init__(self, min_confidence: float = 0.5):
        mp = require_mediapipe("face landmarks")
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=min_confidence
        )

    def __call__(self, crop: np.ndarray) -> np.ndarray | None:
        result = self._mesh.process(np.ascontiguousarray(crop))
        if not result.multi_face_landmarks:
            return None
        h, w = crop.shape[:2]
        marks = result.multi_face_landmarks[0].landmark
        return np.array([[m.x * w, m.y * h] for m in marks], dtype=np.float32)
