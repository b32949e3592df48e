"""How far feature statistics carry a linear model across corpora: a logistic regression trained on every clip of one
corpus scores every clip of another, among the classes both have, with the target's features standardised three
ways: with the source corpus's statistics (what a file on its own gets), with the target corpus's own statistics (all
of its clips, unlabelled: what a deployment could collect from its site), and each target speaker with all of their own
clips (the transductive upper reference).

    python benchmarks/linear_cross_corpus.py CONFIG --source SOURCE.csv --target TARGET.csv [--C 0.01 0.1]

CONFIG gives the audio features (its `features.audio`); both manifests go through the feature cache.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.linear_model import LogisticRegression

from emofuse.config.loading import load_config
from emofuse.datasets.build import build_features
from emofuse.features.cache import FeatureCache, default_cache_dir


def audio_features(config, manifest: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = config.data.model_copy(update={"path": manifest, "modalities": ["audio"]})
    fs = build_features(data, config.features, None, FeatureCache(default_cache_dir()), progress=False)
    return np.asarray(fs.features["audio"]), fs.meta["emotion"].to_numpy(), fs.meta["actor"].to_numpy()


def standardised(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return (values - reference.mean(0)) / (reference.std(0) + 1e-8)


def per_speaker(values: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    for s in np.unique(speakers):
        mine = speakers == s
        out[mine] = standardised(values[mine], values[mine])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--C", type=float, nargs="+", default=[0.01, 0.1])
    args = parser.parse_args()
    config = load_config(args.config)
    xs, ys, speakers_s = audio_features(config, args.source)
    xt, yt, speakers_t = audio_features(config, args.target)
    shared = sorted(set(ys) & set(yt))
    scored = np.isin(yt, shared)
    print(f"{len(ys)} source clips, {int(scored.sum())} target clips scored among {len(shared)} shared classes: {shared}")
    ways = {"source statistics (a file on its own)": (standardised(xs, xs), standardised(xt, xs)),
            "target corpus statistics (unlabelled)": (standardised(xs, xs), standardised(xt, xt)),
            "each speaker, all own clips (transductive)": (per_speaker(xs, speakers_s), per_speaker(xt, speakers_t))}
    for c in args.C:
        for name, (train, test) in ways.items():
            for classes, label in ((None, "all source classes"), (shared, "shared classes only")):
                keep = np.ones(len(ys), bool) if classes is None else np.isin(ys, classes)
                model = LogisticRegression(C=c, max_iter=2000).fit(train[keep], ys[keep])
                columns = [list(model.classes_).index(k) for k in shared]
                pred = np.asarray(shared)[model.predict_proba(test[scored])[:, columns].argmax(1)]
                print(f"C {c:g}  {name:44s}  trained on {label:18s}  accuracy {np.mean(pred == yt[scored]):.4f}")


if __name__ == "__main__":
    main()
