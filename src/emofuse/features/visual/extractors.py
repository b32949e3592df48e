"""Video feature extractors: a video file in, what a visual branch trains on out.

``face_clips`` gives the input of a video backbone (the 3D ResNeXt of the Mars paper): ``frames`` face crops
(T, S, S, 3) uint8, evenly spaced over the video, of the face tracked through it. ``face_features`` gives
per-frame face descriptors (T, D) at the same frames (HOG, landmark geometry, expression probabilities), for
the light encoders.
Sampled frames where the tracked face is missing are left out (the clip is shorter; encoders take true
lengths), and the record kept beside each cache entry says how many frames had a face. A video with a face
in fewer than ``min_face_share`` of its sampled frames is an error that names the file, so the dataset
builder can stop or skip it and report it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from emofuse.core.registry import Part
from emofuse.core.errors import DataError
from emofuse.data.media import decode_video
from emofuse.features.base import Extractor
from emofuse.features.visual.pipeline import FaceAnalysis, FacePipeline
from emofuse.core.registry import Registry

VIDEO_EXTRACTORS: Registry["VideoExtractor"] = Registry("video feature extractor")


class FaceSamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frames: int = Field(16, ge=1, description="frames per clip, evenly spaced over the video")
    analysis_fps: float | None = Field(
        None, gt=0, description="face detection and tracking rate (raised to frames / duration for short videos); "
                                "None: only the sampled frames are analysed"
    )
    detector: Part = Field(default_factory=lambda: Part(name="haar"), description="haar (OpenCV) or mediapipe")
    margin: float = Field(0.2, ge=0, description="crop side = longer face-box side x (1 + margin)")
    min_face_share: float = Field(
        0.5, gt=0, le=1, description="a video whose sampled frames show a face less often than this is an error"
    )


class VideoExtractor(Extractor):
    Params: ClassVar[type[FaceSamplingParams]] = FaceSamplingParams
    version: ClassVar[str] = "2"  # 2: the face near the track is searched for at its own size only
    sequence: ClassVar[bool] = True
    clips: ClassVar[bool] = False  # (T, S, S, 3) uint8 face crops rather than (T, D) features
    descriptors: ClassVar[list[str]] = []
    crop_size: ClassVar[int] = 112

    def __init__(self, params: FaceSamplingParams):
        super().__init__(params)
        self._pipeline: FacePipeline | None = None  # built on first use: OpenCV / MediaPipe objects do not pickle

    @property
    def pipeline(self) -> FacePipeline:
        if self._pipeline is None:
            p = self.params
            self._pipeline = FacePipeline({
                "detector": p.detector.model_dump(), "fps": None, "crop_size": self.crop_size, "crop_margin": p.margin,
                "descriptors": self.descriptors,
            })
        return self._pipeline

    def sample_faces(self, path: Path) -> tuple[FaceAnalysis, np.ndarray, dict]:
        """The face analysis of the video, the positions (in ``analysis.face_frames``) of the sampled frames that
        have a face, and the record of how many frames had one."""
        p = self.params
        video = decode_video(path, p.analysis_fps, min_frames=p.frames)  # about `frames` frames without analysis_fps
        n = len(video.frames)
        slots = np.linspace(0, n - 1, p.frames).round().astype(int)  # repeats frames when the video has fewer
        analysis = self.pipeline.analyze(video, keep=slots)  # crops and descriptors of the sampled frames only
        position = {frame: j for j, frame in enumerate(analysis.face_frames)}
        picked = np.array([position[i] for i in slots if i in position], dtype=int)
        record = {**analysis.report, "sampled": int(len(slots)), "sampled_with_face": int(len(picked))}
        if len(picked) < p.min_face_share * len(slots):
            raise DataError(path, f"a face in only {len(picked)} of {len(slots)} sampled frames ({record['detected']} of "
                                  f"{n} analysed frames detected, {record['held']} held over; min_face_share "
                                  f"{p.min_face_share})")
        return analysis, picked, record


@VIDEO_EXTRACTORS.register("face_clips")
class FaceClips(VideoExtractor):
    class Params(FaceSamplingParams):
        size: int = Field(112, ge=16, description="side of the square face crops in pixels")

    clips = True
    memmap = True

    @property
    def crop_size(self) -> int:
        return self.params.size

    def extract_file(self, path: Path) -> tuple[np.ndarray, dict]:
        analysis, picked, record = self.sample_faces(Path(path))
        return np.ascontiguousarray(analysis.crops[picked]), record


@VIDEO_EXTRACTORS.register("face_features")
class FaceFeatures(VideoExtractor):
    class Params(FaceSamplingParams):
        descriptors: list[Literal["hog", "geometry", "expression"]] = Field(
            default_factory=lambda: ["hog"], min_length=1,
            description="per-frame features, concatenated: hog (OpenCV), geometry (face-mesh landmarks; needs "
                        "mediapipe), expression (fer's 7 expression probabilities; needs ai-edge-litert)",
        )
        pool: bool = Field(False, description="average over the frames: one vector per video instead of a sequence")

    @property
    def descriptors(self) -> list[str]:
        return list(self.params.descriptors)

    @property
    def sequence(self) -> bool:
        return not self.params.pool

    def extract_file(self, path: Path) -> tuple[np.ndarray, dict]:
        analysis, picked, record = self.sample_faces(Path(path))
        values = np.concatenate([analysis.descriptors[d][picked] for d in self.descriptors], axis=1)
        values = values[np.isfinite(values).all(axis=1)]  # frames where the landmarks failed
        if not len(values):
            raise DataError(path, f"no sampled frame gave {' + '.join(self.descriptors)} features")
        record["frames_with_features"] = int(len(values))
        return (values.mean(axis=0) if self.params.pool else values).astype(np.float32), record
