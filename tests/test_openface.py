import numpy as np
import pandas as pd
import pytest

from emofuse.config.schema import DataConfig, FeaturesConfig
from emofuse.core.errors import DataError
from emofuse.data.openface import clip_vector_from_frames, read_clip_table
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import build_ravdess_features

from conftest import AU_NAMES, RAVDESS, requires_shared_data


def write_openface_csv(path, au_values, success, confidence):
    """A per-frame file as OpenFace 2 FeatureExtraction writes it (note the spaces after commas)."""
    n = len(success)
    frame = pd.DataFrame({"frame": np.arange(1, n + 1), "face_id": 0, "timestamp": np.arange(n) / 30,
                          "confidence": confidence, "success": success})
    for name, value in zip(AU_NAMES, au_values.T):
        frame[name] = value
    frame.columns = [c if i == 0 else " " + c for i, c in enumerate(frame.columns)]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_per_frame_csv_is_averaged_over_tracked_frames(tmp_path):
    values = np.arange(4 * len(AU_NAMES), dtype=float).reshape(4, -1)
    path = tmp_path / "01-01-03-01-01-01-01.csv"
    write_openface_csv(path, values, success=[1, 0, 1, 1], confidence=[0.98, 0.1, 0.5, 0.95])
    vector, names, stats = clip_vector_from_frames(path)
    assert names == AU_NAMES
    np.testing.assert_allclose(vector, values[[0, 3]].mean(0), rtol=1e-6)
    assert stats == {"frames": 4, "frames_without_face": 2}


def test_no_tracked_face_is_a_clear_error(tmp_path):
    path = tmp_path / "01-01-03-01-01-01-01.csv"
    write_openface_csv(path, np.ones((3, len(AU_NAMES))), success=[0, 0, 0], confidence=[0.0, 0.0, 0.0])
    with pytest.raises(DataError, match="no frame with a tracked face"):
        clip_vector_from_frames(path)


@pytest.mark.slow
def test_per_frame_folder_feeds_the_pipeline(ravdess_fixture, tmp_path):
    table = pd.read_csv(ravdess_fixture / "openface_au_clip_means.csv", dtype={"video_stem": str})
    rng = np.random.default_rng(0)
    for _, row in table.iterrows():
        clip = row[AU_NAMES].to_numpy(dtype=float)
        frames = clip + rng.normal(0, 0.01, (5, len(AU_NAMES)))
        frames -= frames.mean(0) - clip  # frame mean equals the table row
        actor = int(row["actor"])
        write_openface_csv(tmp_path / "frames" / f"Actor_{actor:02d}" / f"{row.video_stem}.csv", frames, [1] * 5, [0.99] * 5)
    features = FeaturesConfig(audio={"name": "mfcc", "params": {"n_mfcc": 13}}, workers=1)
    cache = FeatureCache(tmp_path / "cache")
    from_table = build_ravdess_features(ravdess_fixture, DataConfig(modalities=["visual"]), features, cache, False)
    from_frames = build_ravdess_features(
        ravdess_fixture, DataConfig(modalities=["visual"], visual={"kind": "openface_frames", "path": str(tmp_path / "frames")}),
        features, cache, False,
    )
    np.testing.assert_allclose(from_frames.features["visual"], from_table.features["visual"], atol=1e-5)


@requires_shared_data()
def test_real_clip_table_has_35_action_units_for_all_takes():
    table, names = read_clip_table(RAVDESS / "openface_au_clip_means.csv")
    assert len(table) == 1440 and len(names) == 35
    assert sum(n.endswith("_r") for n in names) == 17
