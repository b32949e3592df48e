from emofuse.features.base import EXTRACTORS, AudioExtractor, Extractor
from emofuse.features import conditioned, egemaps, pretrained, spectral, transcript, whisper  # noqa: F401  (registration)
from emofuse.features.visual.extractors import VIDEO_EXTRACTORS, VideoExtractor

__all__ = ["EXTRACTORS", "VIDEO_EXTRACTORS", "AudioExtractor", "Extractor", "VideoExtractor"]
