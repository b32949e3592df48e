from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

# The fixtures' recordings are tones, which hold no speech: predictions answer them as before unless a test turns the
# speech gate on (Predictor(speech_gate=True), tests/test_segments.py); subprocesses inherit the setting.
os.environ.setdefault("EMOFUSE_SPEECH_GATE", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RAVDESS = SHARED_DATA / "ravdess"
AU_NAMES = [f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)] + [
    f"AU{n:02d}_c" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)
]


def requires_shared_data():
    return pytest.mark.skipif(not RAVDESS.is_dir(), reason="../shared/data/ravdess is not beside the repository")


def make_ravdess_fixture(root: Path, actors=range(1, 7), emotions=range(1, 9), sample_rate: int = 22050,
                         seconds: float = 0.6, seed: int = 0) -> Path:
    """A tiny RAVDESS-shaped directory: tone-like audio and an AU table, both carrying the label."""
    rng = np.random.default_rng(seed)
    rows = []
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    for actor in actors:
        folder = root / "audio16k" / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for emotion in emotions:
            for statement in (1, 2):
                intensity = 1
                take = f"01-{emotion:02d}-{intensity:02d}-{statement:02d}-01-{actor:02d}"
                wave = 0.3 * np.sin(2 * np.pi * (150 + 60 * emotion) * t) + 0.02 * rng.standard_normal(len(t))
                sf.write(folder / f"03-{take}.wav", wave.astype(np.float32), sample_rate)
                au = rng.random(len(AU_NAMES)) * 0.5
                au[emotion % len(AU_NAMES)] += 2.0
                rows.append({"video_stem": f"01-{take}", "actor": actor, "emotion": emotion,
                             **dict(zip(AU_NAMES, au))})
    pd.DataFrame(rows).to_csv(root / "openface_au_clip_means.csv", index=False)
    return root


@pytest.fixture
def ravdess_fixture(tmp_path) -> Path:
    return make_ravdess_fixture(tmp_path / "ravdess")


def make_feature_manifest(root: Path, speakers=("spk1", "spk2", "spk3", "spk10", "spk11", "spk12"),
                          labels=("negative", "neutral", "positive"), per_label: int = 4, dim: int = 12,
                          frames: int | None = None, seed: int = 0, name: str = "manifest.csv") -> Path:
    """A manifest of precomputed features (.npy, relative paths): audio_features (frames, dim) sequences (or (dim,)
    vectors without ``frames``) and visual_features (dim,) vectors, both carrying the label, with speaker offsets
    (what speaker normalisation removes); speakers alternate male and female."""
    rng = np.random.default_rng(seed)
    rows = []
    (root / "features").mkdir(parents=True, exist_ok=True)
    for s, speaker in enumerate(speakers):
        offset = rng.normal(0, 2, dim)
        for k, label in enumerate(labels):
            for j in range(per_label):
                sample = f"{speaker}_{label}_{j}"
                signal = np.zeros(dim)
                signal[k] = 3.0
                shape = (frames, dim) if frames else (dim,)
                audio = offset + signal + rng.normal(0, 1, shape)
                visual = signal[::-1] + rng.normal(0, 1, dim)
                np.save(root / "features" / f"{sample}_a.npy", audio.astype(np.float32))
                np.save(root / "features" / f"{sample}_v.npy", visual.astype(np.float32))
                rows.append({"id": sample, "speaker": speaker, "gender": "female" if s % 2 else "male", "label": label,
                             "audio_features": f"features/{sample}_a.npy", "visual_features": f"features/{sample}_v.npy"})
    pd.DataFrame(rows).to_csv(root / name, index=False)
    return root / name


def feature_manifest_config(path: Path, **overrides) -> dict:
    """A small config tree for make_feature_manifest's data: an MLP per modality, average fusion, 2 folds."""
    tree = {
        "name": "features", "seed": 0,
        "data": {"dataset": "manifest", "path": str(path), "audio_source": "features", "visual": {"kind": "features"}},
        "features": {"speaker_norm": True, "workers": 1},
        "model": {"encoders": {"audio": {"name": "mlp", "params": {"hidden": [16]}},
                               "visual": {"name": "mlp", "params": {"hidden": [16]}}}},
        "train": {"epochs": 4, "batch_size": 16, "early_stopping": {"patience": 5, "min_epochs": 0}},
        "protocol": {"n_folds": 3, "val_fraction": 0.25},
    }
    for key, value in overrides.items():
        node = tree
        *parents, last = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[last] = value
    return tree
