"""Whisper's log-mel front end and encoder in plain torch, for the bundled CTranslate2 weights.

Importing transformers costs seconds on a laptop CPU, more than encoding a clip; a user's first `emofuse predict`
should not pay it. The encoder is small (two convolutions, sinusoidal positions, pre-norm transformer layers, a
final layer norm), so it is written out here with transformers' parameter names, and loads the same state dict
(ctranslate2_weights.encoder_state_dict). tests/test_whisper.py checks the mel and every hidden state against
transformers' WhisperFeatureExtractor and WhisperEncoder. Hugging Face checkpoints still load through transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emofuse.features.whisper.framing import HOP, N_FFT, SAMPLE_RATE


def slaney_mel_filters(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) triangular filters on the Slaney mel scale, area-normalised (librosa's default, which
    Whisper's mel filters are)."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp

    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    ramps = edges[:, None] - fft_freqs[None, :]
    widths = np.diff(edges)
    weights = np.maximum(0, np.minimum(-ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


class LogMel:
    """Waveform (16 kHz) -> Whisper's log-mel input (1, n_mels, frames): power STFT, mel, log10 clamped to 8 below the
    maximum, scaled; the clip's own length padded with silence to a multiple of ``pad_to`` samples, or to ``length``."""

    def __init__(self, n_mels: int):
        self.filters = torch.from_numpy(slaney_mel_filters(n_mels)).float()
        self.window = torch.hann_window(N_FFT)

    def __call__(self, wave: np.ndarray, pad_to: int | None = None, length: int | None = None) -> torch.Tensor:
        wave = torch.from_numpy(np.asarray(wave, np.float32))
        target = length if length is not None else -(-len(wave) // pad_to) * pad_to
        wave = F.pad(wave, (0, max(0, target - len(wave))))
        stft = torch.stft(wave, N_FFT, HOP, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        log_spec = torch.clamp(self.filters @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return ((log_spec + 4.0) / 4.0)[None]


@dataclass
class EncoderConfig:
    num_mel_bins: int
    d_model: int
    encoder_layers: int
    encoder_attention_heads: int
    encoder_ffn_dim: int
    max_source_positions: int


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim, bias=False)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        return self.out_proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))


class Layer(nn.Module):
    """Pre-norm: x + attention(norm(x)), then x + fc2(gelu(fc1(norm(x))))."""

    def __init__(self, c: EncoderConfig):
        super().__init__()
        self.self_attn = Attention(c.d_model, c.encoder_attention_heads)
        self.self_attn_layer_norm, self.final_layer_norm = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.fc1, self.fc2 = nn.Linear(c.d_model, c.encoder_ffn_dim), nn.Linear(c.encoder_ffn_dim, c.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


@dataclass
class EncoderOutput:
    hidden_states: tuple[torch.Tensor, ...]  # N + 1: the front end with positions, each layer's input, the final norm


class WhisperEncoder(nn.Module):
    """transformers' WhisperEncoder, its forward with ``output_hidden_states=True`` (inference only)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv1d(config.num_mel_bins, config.d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(config.d_model, config.d_model, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_source_positions, config.d_model)
        self.layers = nn.ModuleList(Layer(config) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(config.d_model)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv1.weight.dtype

    def forward(self, mel: torch.Tensor, output_hidden_states: bool = True, upto: int | None = None) -> EncoderOutput:
        """``upto``: hidden states 0..upto only, the layers above them not run (the states are those of a full pass)."""
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.embed_positions.weight[: x.shape[1]]
        depth = len(self.layers) if upto is None else min(upto, len(self.layers))
        states = []
        for layer in self.layers[:depth]:
            states.append(x)
            x = layer(x)
        states.append(self.layer_norm(x) if depth == len(self.layers) else x)
        return EncoderOutput(tuple(states))


def load_encoder(config: dict, state: dict[str, torch.Tensor]) -> WhisperEncoder:
    keys = ("num_mel_bins", "d_model", "encoder_layers", "encoder_attention_heads", "encoder_ffn_dim", "max_source_positions")
    encoder = WhisperEncoder(EncoderConfig(**{k: config[k] for k in keys}))
    encoder.load_state_dict(state, strict=True)
    return encoder.eval()
