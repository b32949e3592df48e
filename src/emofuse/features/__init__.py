from emofuse.features.base import EXTRACTORS, AudioExtractor
from emofuse.features import egemaps, pretrained, spectral  # noqa: F401  (registration)

__all__ = ["EXTRACTORS", "AudioExtractor"]
