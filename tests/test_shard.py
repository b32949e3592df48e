"""`emofuse extract --shard i/n`: disjoint shards that together fill one cache, written by processes at once."""

import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import make_ravdess_fixture
from test_resume import TINY

from emofuse.features import EXTRACTORS
from emofuse.features.cache import FeatureCache
from emofuse.features.extract import extract_features, in_shard, parse_shard
from emofuse.core.registry import ConfigError


def test_shards_are_disjoint_and_cover_every_take():
    takes = [f"01-{e:02d}-01-{s:02d}-{r:02d}-{a:02d}" for e in range(1, 9) for s in (1, 2) for r in (1, 2)
             for a in range(1, 25)]
    for n in (1, 2, 3, 5):
        owners = [[i for i in range(1, n + 1) if in_shard(t, i, n)] for t in takes]
        assert all(len(o) == 1 for o in owners)  # each take in exactly one shard
        sizes = np.bincount([o[0] for o in owners], minlength=n + 1)[1:]
        assert sizes.min() > 0.7 * len(takes) / n  # roughly even


@pytest.mark.parametrize("text", ["0/3", "4/3", "2", "a/b", "1/0"])
def test_bad_shard_is_named(text):
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


@pytest.mark.slow
def test_parallel_shards_and_a_full_run_fill_one_cache(tmp_path):
    data = make_ravdess_fixture(tmp_path / "ravdess", actors=range(1, 3))  # 32 takes: three processes start fast
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    cache = tmp_path / "cache"

    def extract(*extra):
        return subprocess.Popen([sys.executable, "-m", "emofuse", "extract", str(config), "--data", str(data),
                                 "--cache", str(cache), "--no-progress", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    # Two shards and an unsharded run at the same time: the same entries are written by two processes at once.
    runs = [extract("--shard", "1/2"), extract("--shard", "2/2"), extract()]
    outputs = [r.communicate(timeout=300)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0, 0], outputs
    counts = [int(re.search(r"(\d+) takes ready", out).group(1)) for out in outputs]
    assert counts[0] + counts[1] == counts[2] == 32 and min(counts[:2]) > 0

    extractor = EXTRACTORS.create(TINY["features"]["audio"]["name"], TINY["features"]["audio"]["params"])
    entries = sorted((cache / extractor.settings_key()).iterdir())
    assert [p.name for p in entries if not p.name.endswith(".npy")] == []  # no temporary file left behind
    assert len(entries) == 32 and all(np.load(p).shape[1] == 13 for p in entries)  # every entry whole

    files = sorted((data / "audio16k").rglob("*.wav"))
    again = extract_features(files, extractor, FeatureCache(cache), workers=1, progress=False)
    assert (again.computed, again.cached, again.failures) == (0, 32, {})  # a later run extracts nothing


def test_shards_alone_fill_the_cache(ravdess_fixture, tmp_path):
    from emofuse.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    cache = tmp_path / "cache"
    for i in (1, 2, 3):
        assert main(["extract", str(config), "--data", str(ravdess_fixture), "--cache", str(cache), "--no-progress",
                     "--shard", f"{i}/3"]) == 0
    extractor = EXTRACTORS.create(TINY["features"]["audio"]["name"], TINY["features"]["audio"]["params"])
    files = sorted((ravdess_fixture / "audio16k").rglob("*.wav"))
    again = extract_features(files, extractor, FeatureCache(cache), workers=1, progress=False)
    assert (again.computed, again.cached) == (0, 96)
