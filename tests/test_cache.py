import pytest
import numpy as np

from emofuse.features import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.features.extract import extract_features


def files_of(root):
    return sorted((root / "audio16k").rglob("*.wav"))


@pytest.mark.slow
def test_second_run_reads_everything_from_the_cache(ravdess_fixture, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    extractor = EXTRACTORS.create("mfcc", {"n_mfcc": 13})
    files = files_of(ravdess_fixture)[:10]
    first = extract_features(files, extractor, cache, workers=2, progress=False)
    assert (first.computed, first.cached, first.failures) == (10, 0, {})
    second = extract_features(files, extractor, cache, workers=2, progress=False)
    assert (second.computed, second.cached) == (0, 10)
    for f in files:
        np.testing.assert_array_equal(first.features[f], second.features[f])
        assert first.features[f].shape[1] == 13


def test_cache_is_keyed_by_content_and_settings(ravdess_fixture, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    files = files_of(ravdess_fixture)[:2]
    extract_features(files, EXTRACTORS.create("mfcc", {"n_mfcc": 13}), cache, workers=1, progress=False)
    moved = files[0].with_name("03-01-02-01-01-02-01.wav")
    files[0].rename(moved)  # same bytes under another name: still a hit
    hit = extract_features([moved], EXTRACTORS.create("mfcc", {"n_mfcc": 13}), cache, workers=1, progress=False)
    assert hit.cached == 1
    other = extract_features(files[1:], EXTRACTORS.create("mfcc", {"n_mfcc": 20}), cache, workers=1, progress=False)
    assert other.computed == 1  # other settings: a miss


@pytest.mark.slow
def test_interrupted_extraction_resumes_with_the_missing_files(ravdess_fixture, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    extractor = EXTRACTORS.create("egemaps", {})
    files = files_of(ravdess_fixture)[:6]
    extract_features(files, extractor, cache, workers=2, progress=False)
    entries = sorted((cache.root / extractor.settings_key()).glob("*.npy"))
    for entry in entries[:3]:  # as if the run had been killed before these were written
        entry.unlink()
    (cache.root / extractor.settings_key() / ".half-written.tmp").write_bytes(b"\x93NUMPY")  # a killed write
    entries[3].write_bytes(b"not a numpy file")  # a damaged entry is recomputed
    again = extract_features(files, extractor, cache, workers=2, progress=False)
    assert (again.computed, again.cached) == (4, 2)
    assert all(v.shape == (88,) for v in again.features.values())
