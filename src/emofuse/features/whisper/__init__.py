"""Whisper encoder states as audio features (the ``whisper`` extractor) and where their weights come from."""

from emofuse.features.whisper import extractor  # noqa: F401  (registration)
