"""The dataset a config's data section names: a RAVDESS directory or a manifest, as one FeatureSet."""

from __future__ import annotations

from pathlib import Path

from emofuse.config.schema import DataConfig, FeaturesConfig
from emofuse.features.cache import FeatureCache
from emofuse.datasets.feature_set import FeatureSet, build_ravdess_features
from emofuse.datasets.manifest_set import build_manifest_features
from emofuse.core.registry import ConfigError


def manifest_path(data: DataConfig, data_dir: str | Path | None = None) -> Path:
    path = data.path or data_dir
    if path is None:
        raise ConfigError("a manifest config needs its CSV: --data manifest.csv or --set data.path=manifest.csv")
    return Path(path)


def build_features(data: DataConfig, features: FeaturesConfig, data_dir: str | Path | None, cache: FeatureCache,
                   progress: bool = True, shard: tuple[int, int] | None = None) -> FeatureSet:
    """RAVDESS: the directory ``data_dir``; a manifest: ``data.path`` (else ``data_dir``)."""
    if data.dataset == "manifest":
        return build_manifest_features(manifest_path(data, data_dir), data, features, cache, progress, shard)
    if data_dir is not None and Path(data_dir).is_file():
        raise ConfigError(f"--data {data_dir} is a file, but the config reads a RAVDESS folder (data.dataset: ravdess); "
                          "a manifest needs data.dataset: manifest, e.g. configs/manifest_audio.yaml")
    return build_ravdess_features(data_dir, data, features, cache, progress, shard)
