"""Visual features from video: face detection and tracking, face crops, per-frame expression descriptors.

OpenFace users feed its action units through ``emofuse.data.openface`` instead.
"""

from emofuse.features.visual.detect import FACE_DETECTORS, FaceDetector
from emofuse.features.visual.pipeline import (
    FaceAnalysis,
    FacePipeline,
    FacePipelineParams,
)

__all__ = ["FACE_DETECTORS", "FaceAnalysis", "FaceDetector", "FacePipeline", "FacePipelineParams"]
