"""A synthetic feature directory in the Hume-Vidmimic2 shape, with a planted signal (for tests and demos).

Every sample has a hidden 4-d affect state z; its six targets are ``sigmoid(1.5 z A + noise)`` (in
[0, 1], like EMI intensities; the noise caps the attainable Pearson near 0.8). Every frame of every
modality carries ``strength_m * z B_m``, a per-sample offset that does not average out over frames
(so no single modality is enough) and unit frame noise. The strengths follow the paper's unimodal
ranking (text > audio > visual); a linear ridge on time means reaches about 0.25 / 0.55 / 0.67 and
0.70 with all three. Not real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HUME_TARGETS = ("Admiration", "Amusement", "Determination", "Empathic Pain", "Excitement", "Joy")
# modality -> (feature dimension, frame-count range, signal strength)
MODALITIES = {"visual": (32, (16, 120), 0.1), "audio": (24, (40, 300), 0.2), "text": (48, (4, 40), 0.3)}
LATENT = 4


def write_emi_fixture(out: str | Path, n_train: int = 240, n_val: int = 80, n_test: int = 80, seed: int = 0,
                      blank_test_targets: bool = False, fmt: str = "npy") -> Path:
    """Write ``out/labels.csv`` and the three modalities (``out/<modality>/<id>.npy``, or ``out/<modality>.npz``)."""
    if fmt not in ("npy", "npz"):
        raise ValueError(f"fmt must be 'npy' or 'npz', not {fmt!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    ids = [f"clip{i:05d}" for i in range(n)]
    z = rng.standard_normal((n, LATENT))
    mix = rng.standard_normal((LATENT, len(HUME_TARGETS))) / np.sqrt(LATENT)
    targets = 1.0 / (1.0 + np.exp(-(1.5 * z @ mix + rng.standard_normal((n, len(HUME_TARGETS))))))
    split = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * n_test)
    labels = pd.DataFrame({"id": ids, "split": split})
    for k, name in enumerate(HUME_TARGETS):
        labels[name] = np.round(targets[:, k], 6)
    if blank_test_targets:
        labels.loc[split == "test", list(HUME_TARGETS)] = np.nan
    labels.to_csv(out / "labels.csv", index=False)
    for m, (dim, (t_min, t_max), strength) in MODALITIES.items():
        basis = rng.standard_normal((LATENT, dim))
        arrays = {}
        for i, sample_id in enumerate(ids):
            frames = int(rng.integers(t_min, t_max + 1))
            offset = strength * z[i] @ basis + rng.standard_normal(dim)
            arrays[sample_id] = (offset + rng.standard_normal((frames, dim))).astype(np.float32)
        if fmt == "npz":
            np.savez(out / f"{m}.npz", **arrays)
        else:
            (out / m).mkdir(exist_ok=True)
            for sample_id, array in arrays.items():
                np.save(out / m / f"{sample_id}.npy", array)
    return out
