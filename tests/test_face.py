"""Face detection, tracking, crops and per-frame descriptors on real CREMA-D video and generated clips."""

import importlib.util

import numpy as np
import pytest

from emofuse.data.media import VideoFrames
from emofuse.features.visual import FacePipeline
from emofuse.features.visual.crops import crop_face
from emofuse.features.visual.track import DETECTED, HELD, NO_FACE, track_largest_face
from emofuse.core.registry import ConfigError

from test_media import CREMA, requires_crema, write_video

HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None


@pytest.fixture(scope="module")
def pipeline():
    return FacePipeline()


@requires_crema
@pytest.mark.parametrize("clip", sorted(p.name for p in CREMA.glob("*.flv")))
def test_face_found_on_most_crema_frames(pipeline, clip):
    analysis = pipeline.analyze_file(CREMA / clip)
    report = analysis.report
    assert report["frames"] >= 15  # about 2 s at the default 10 frames per second
    assert report["detected"] >= 0.8 * report["frames"]
    assert report["detected"] + report["held"] + report["without_face"] == report["frames"]
    m = len(analysis.face_frames)
    assert m == report["frames"] - report["without_face"]
    assert analysis.crops.shape == (m, 112, 112, 3) and analysis.crops.dtype == np.uint8
    boxes = analysis.boxes[analysis.face_frames]
    sides = boxes[:, 2] - boxes[:, 0]
    assert np.all((sides > 60) & (sides < 300))  # one talking head in a 480 x 360 frame
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert np.ptp(centres, axis=0).max() < 60  # the track stays on the speaker
    assert analysis.descriptors["hog"].shape == (m, 1764)
    vector = analysis.clip_vector("hog")
    assert vector.shape == (1764,) and np.isfinite(vector).all()


def test_blank_video_gives_no_face_and_a_report(tmp_path, pipeline):
    path = write_video(tmp_path / "blank.mp4", np.full((20, 120, 160, 3), 128, np.uint8), fps=20)
    analysis = pipeline.analyze_file(path)
    assert analysis.report == {"frames": 10, "detected": 0, "held": 0, "without_face": 10, "detector": "haar"}
    assert analysis.crops.shape == (0, 112, 112, 3)
    assert analysis.descriptors["hog"].shape == (0, 1764)
    assert analysis.clip_vector("hog") is None
    assert np.isnan(analysis.boxes).all()


def test_tracker_holds_associates_and_reacquires():
    face = np.array([100.0, 100, 200, 200])
    big_elsewhere = np.array([300.0, 0, 500, 200])
    moved = face + 10
    detections = [
        np.zeros((0, 4)),  # no face yet
        face[None],  # the track starts
        np.zeros((0, 4)),  # missed: the box is held
        np.stack([big_elsewhere, moved]),  # the overlapping face continues the track, not the largest
        big_elsewhere[None],  # no overlap: held (1)
        big_elsewhere[None],  # held (2) = max_hold
        big_elsewhere[None],  # hold exhausted: restarts on the largest face
    ]
    boxes, status = track_largest_face(detections, iou_threshold=0.3, max_hold=2)
    assert status == [NO_FACE, DETECTED, HELD, DETECTED, HELD, HELD, DETECTED]
    assert np.isnan(boxes[0]).all()
    np.testing.assert_array_equal(boxes[2], face)
    np.testing.assert_array_equal(boxes[3], moved)
    np.testing.assert_array_equal(boxes[5], moved)
    np.testing.assert_array_equal(boxes[6], big_elsewhere)


def test_track_is_dropped_after_the_hold():
    boxes, status = track_largest_face([np.array([[0.0, 0, 10, 10]])] + [np.zeros((0, 4))] * 3, max_hold=1)
    assert status == [DETECTED, HELD, NO_FACE, NO_FACE]
    assert np.isnan(boxes[2:]).all()


def test_crop_at_the_border_keeps_scale_and_pads_black():
    frame = np.full((100, 100, 3), 255, np.uint8)
    crop = crop_face(frame, np.array([-20.0, 10, 30, 60]), size=64, margin=0.0)
    assert crop.shape == (64, 64, 3)
    assert crop[:, :20].max() == 0 and crop[:, 30:].min() == 255  # the 20 px left of the frame are black


def test_pipeline_on_frames_in_memory_respects_crop_size():
    frames = np.full((3, 90, 90, 3), 90, np.uint8)
    video = VideoFrames(frames, np.arange(3) / 10, 10.0, 0.3)
    analysis = FacePipeline({"crop_size": 48, "descriptors": []}).analyze(video)
    assert analysis.crops.shape == (0, 48, 48, 3) and analysis.descriptors == {}


def test_bad_pipeline_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown face detector 'yolo'"):
        FacePipeline({"detector": {"name": "yolo"}})
    with pytest.raises(ConfigError, match="min_neighbors"):
        FacePipeline({"detector": {"name": "haar", "params": {"min_neighbors": 0}}})


@pytest.mark.skipif(HAS_MEDIAPIPE, reason="mediapipe is installed")
def test_mediapipe_parts_name_the_extra():
    with pytest.raises(ConfigError, match=r"emofuse\[face\]"):
        FacePipeline({"detector": {"name": "mediapipe"}})
    with pytest.raises(ConfigError, match=r"emofuse\[face\]"):
        FacePipeline({"descriptors": ["geometry"]})


@requires_crema
@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="needs the optional 'face' extra (mediapipe)")
def test_mediapipe_detector_and_landmark_geometry():
    from emofuse.features.visual.landmarks import GEOMETRY_NAMES

    pipe = FacePipeline({"detector": {"name": "mediapipe"}, "descriptors": ["geometry"]})
    happy, neutral = (pipe.analyze_file(CREMA / f"1001_DFA_{e}_XX.flv") for e in ("HAP", "NEU"))
    for analysis in (happy, neutral):
        assert analysis.report["detected"] >= 0.8 * analysis.report["frames"]
        assert analysis.landmarks.shape == (len(analysis.face_frames), 468, 2)
        boxes = analysis.boxes[analysis.face_frames]
        inside = (analysis.landmarks[:, :, 0] > boxes[:, None, 0] - 20) & (analysis.landmarks[:, :, 0] < boxes[:, None, 2] + 20)
        assert inside.mean() > 0.95  # landmarks mapped back onto the tracked face
    smile = GEOMETRY_NAMES.index("smile")
    assert happy.clip_vector("geometry")[smile] > neutral.clip_vector("geometry")[smile]


@requires_crema
def test_regional_search_follows_the_same_face_as_whole_frame_search(pipeline):
    from emofuse.data.media import decode_video
    from emofuse.features.visual.track import iou

    video = decode_video(CREMA / "1001_DFA_FEA_XX.flv", fps=10)
    regional = pipeline.analyze(video)
    whole = FacePipeline({"search_region": None}).analyze(video)
    assert regional.report == whole.report
    overlaps = [iou(a, b[None])[0] for a, b in zip(regional.boxes, whole.boxes)]
    assert min(overlaps) > 0.6
