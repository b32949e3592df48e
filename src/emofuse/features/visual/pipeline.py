"""Face pipeline over a video: detect, track the largest face, crop it, describe each face frame.

Frames are first thinned to an analysis rate (10 per second by default: expressions change over
hundreds of milliseconds). Once a face is found, the next frame is searched only in a small region
around it (resized so the face is about as large as in a whole-frame search), for faces of about the
tracked face's size, and the whole frame only when that fails: detection, the costly step, then reads
a few times fewer pixels at a few scales. Every analysed frame is tracked, but crops and descriptors are
computed only for the frames the caller keeps (an extractor's sampled frames), the only ones it reads.
Frames without a face are counted in the report, never an error: a clip with no face at all gives
empty crops and descriptors, and the caller decides what a missing visual modality means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from emofuse.core.registry import Part
from emofuse.data.media import VideoFrames, decode_video
from emofuse.features.visual.crops import crop_face, crop_to_frame
from emofuse.features.visual.detect import FACE_DETECTORS
from emofuse.features.visual.track import DETECTED, HELD, NO_FACE, FaceTracker

MESH_CROP = (192, 0.6)  # size and margin of the crop the face mesh sees: it needs the whole head in view
SIZE_BAND = (0.7, 1.4)  # a face searched for near the track is this many times the tracked face's side, at most


class FacePipelineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detector: Part = Field(default_factory=lambda: Part(name="haar"), description="haar (OpenCV) or mediapipe")
    fps: float | None = Field(10.0, gt=0, description="analysis rate: frames are thinned to at most this many per second")
    max_frames: int | None = Field(None, gt=0, description="analyse at most this many frames")
    iou_threshold: float = Field(0.3, gt=0, le=1, description="least overlap with the track for a detection to continue it")
    max_hold: int = Field(15, ge=0, description="analysed frames the last box is kept for when the face is not detected")
    search_region: float | None = Field(
        2.5, gt=1, description="side of the region searched around the last detected face, in face sides (None: whole frames)"
    )
    search_size: int = Field(72, ge=32, description="that region is resized to this many pixels before detecting")
    coarse_size: int | None = Field(
        160, ge=48, description="a whole frame is first searched at this longer side (a face that fills much of the frame "
                                "is found at a fraction of the cost), then at the detector's own size (None: only that)"
    )
    crop_size: int = Field(112, ge=16)
    crop_margin: float = Field(0.2, ge=0, description="crop side = longer box side x (1 + margin)")
    descriptors: list[Literal["hog", "geometry", "expression"]] = Field(
        default_factory=lambda: ["hog"],
        description="per-frame features: hog (OpenCV), geometry (face-mesh landmarks; needs mediapipe), expression "
                    "(7 expression probabilities of fer's CNN; needs ai-edge-litert)",
    )


@dataclass
class FaceAnalysis:
    timestamps: np.ndarray  # (N,) seconds of the analysed frames
    boxes: np.ndarray  # (N, 4) tracked box x0, y0, x1, y1 in pixels; NaN rows where there is no face
    status: list[str]  # per frame: detected, held (previous box kept) or none
    face_frames: np.ndarray  # (M,) indices of the frames described: those with a box (among the kept ones)
    crops: np.ndarray  # (M, S, S, 3) uint8
    descriptors: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (M, D); NaN rows where it failed
    landmarks: np.ndarray | None = None  # (M, 468, 2) in frame pixels, with "geometry"
    detector: str = ""

    @property
    def report(self) -> dict:
        return {
            "frames": len(self.status),
            "detected": self.status.count(DETECTED),
            "held": self.status.count(HELD),
            "without_face": self.status.count(NO_FACE),
            "detector": self.detector,
        }

    def clip_vector(self, name: str) -> np.ndarray | None:
        """Mean of a descriptor over the frames where it exists (None when no frame has it)."""
        values = self.descriptors[name]
        ok = np.isfinite(values).all(axis=1) if len(values) else np.zeros(0, bool)
        return values[ok].mean(axis=0) if ok.any() else None


class FacePipeline:
    def __init__(self, params: FacePipelineParams | dict | None = None):
        self.params = FacePipelineParams.model_validate(params or {})
        p = self.params
        self.detector = FACE_DETECTORS.create(p.detector.name, p.detector.params)
        self._hog = self._mesh = self._expression = None
        if "hog" in p.descriptors:
            from emofuse.features.visual.hog import HogDescriptor

            self._hog = HogDescriptor()
        if "geometry" in p.descriptors:
            from emofuse.features.visual.landmarks import FaceMeshLandmarks

            self._mesh = FaceMeshLandmarks()
        if "expression" in p.descriptors:
            from emofuse.features.visual.expression import ExpressionModel

            self._expression = ExpressionModel()

    def analyze_file(self, path: str | Path) -> FaceAnalysis:
        return self.analyze(decode_video(path, self.params.fps, self.params.max_frames))

    def analyze(self, video: VideoFrames, keep: np.ndarray | None = None) -> FaceAnalysis:
        """Track the face through every frame; crop and describe the frames in ``keep`` (default: all) that have one."""
        p = self.params
        tracker = FaceTracker(p.iou_threshold, p.max_hold)
        boxes = np.full((len(video.frames), 4), np.nan)
        status = []
        for i, frame in enumerate(video.frames):
            found = self._search_near(frame, tracker.box) if tracker.box is not None and tracker.held == 0 else None
            status.append(tracker.update(found if found is not None and len(found) else self._search_frame(frame)))
            if tracker.box is not None:
                boxes[i] = tracker.box
        described = np.isfinite(boxes).all(axis=1)
        if keep is not None:
            described &= np.isin(np.arange(len(boxes)), keep)
        face_frames = np.flatnonzero(described)
        crops = np.stack([crop_face(video.frames[i], boxes[i], p.crop_size, p.crop_margin) for i in face_frames]) \
            if len(face_frames) else np.zeros((0, p.crop_size, p.crop_size, 3), np.uint8)
        analysis = FaceAnalysis(video.timestamps, boxes, status, face_frames, crops, detector=p.detector.name)
        if self._hog is not None:
            analysis.descriptors["hog"] = np.stack([self._hog(c) for c in crops]) if len(crops) \
                else np.zeros((0, self._hog.dim), np.float32)
        if self._mesh is not None:
            self._add_geometry(analysis, video)
        if self._expression is not None:
            analysis.descriptors["expression"] = np.stack([self._expression(video.frames[i], boxes[i]) for i in face_frames]) \
                if len(face_frames) else np.zeros((0, self._expression.dim), np.float32)
        return analysis

    def _search_frame(self, frame: np.ndarray) -> np.ndarray:
        """Detections in the whole frame: at the coarse size first, at the detector's own where that finds none."""
        p = self.params
        scale = p.coarse_size / max(frame.shape[:2]) if p.coarse_size is not None else 1.0
        if scale < 1.0:
            import cv2

            found = self.detector(cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
            if len(found):
                return found / scale
        return self.detector(frame)

    def _search_near(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """Detections in the region around ``box``, in frame pixels (None when regional search is off)."""
        p = self.params
        if p.search_region is None:
            return None
        margin = p.search_region - 1
        # the face should fill about 1/search_region of the region: scan only the scales near that size
        low, high = SIZE_BAND
        found = self.detector(crop_face(frame, box, p.search_size, margin), min_face=low / p.search_region,
                              max_face=high / p.search_region)
        if not len(found):
            return found
        corners = crop_to_frame(found.reshape(-1, 2, 2), box, p.search_size, margin)
        return corners.reshape(-1, 4)

    def _add_geometry(self, analysis: FaceAnalysis, video: VideoFrames) -> None:
        from emofuse.features.visual.landmarks import (
            GEOMETRY_NAMES,
            expression_geometry,
        )

        size, margin = MESH_CROP
        marks = np.full((len(analysis.face_frames), 468, 2), np.nan, np.float32)
        geometry = np.full((len(analysis.face_frames), len(GEOMETRY_NAMES)), np.nan, np.float32)
        for j, i in enumerate(analysis.face_frames):
            box = analysis.boxes[i]
            points = self._mesh(crop_face(video.frames[i], box, size, margin))
            if points is None:
                continue
            geometry[j] = expression_geometry(points)  # ratios: the same in crop and frame pixels
            marks[j] = crop_to_frame(points, box, size, margin)
        analysis.descriptors["geometry"] = geometry
        analysis.landmarks = marks
