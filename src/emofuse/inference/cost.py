"""`emofuse cost`: parameters, FLOPs and latency per sample of every registered method (the Mars paper's Table II).

Methods are every registered fusion, each built with its default parameters, plus the losses that only reweight
the branches of the average fusion (Mars, focal, M3ER, multiplication): at inference they are the average fusion,
so their row repeats its numbers. A fusion that cannot be built or run on a setting's encoders gets a row with
the reason. Two settings:

- ``ravdess``: the repository's RAVDESS models (``configs/ravdess_mars.yaml``): an MLP on the audio
  extractor's clip vector (Whisper tiny.en, layers 1-3, mean + std: 2,304; eGeMAPS: 88) and an MLP on the OpenFace action units
  (35), dimensions read from the extractor's output on one second of audio and from the packaged sample's AU table;
- ``paper``: the paper's end-to-end backbones, a 3D ResNeXt-50 on 30 face crops of 224 x 224 (1 s at 30 fps, the
  input of the public RAVDESS code of MSAF that the paper's Table I backbones match: 25.88 M parameters) and the
  repository's 1D CNN (``configs/ravdess_mars_cnn.yaml``) on the MFCC + delta frames of 2.45 s of audio (MSAF's
  audio window).

FLOPs come from ptflops' ``pytorch`` backend (module hooks, including ``nn.MultiheadAttention`` and recurrent
layers, plus patched functional calls such as ``F.linear`` and ``torch.matmul``; normalisation, activations and
pooling count one operation per element; FFTs are not counted). ptflops counts multiply-accumulates: ``gmacs``
is that count / 1e9 and ``gflops`` = 2 x ``gmacs``. Latency: batch 1, ``torch.inference_mode``, eval mode, the
median of ``repeats`` timed forward passes after ``warmup`` untimed ones, the methods taking turns in every round,
with torch's current thread count.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emofuse.config.schema import ModelConfig
from emofuse.core.registry import Part
from emofuse.core.registry import ConfigError, require_extra

N_CLASSES = 8
PAPER_GFLOPS = 56.23  # Table II: decision fusion / Mars
VIDEO_FRAMES, VIDEO_SIZE = 30, 224
AUDIO_SECONDS = 2.45


@dataclass
class Setting:
    name: str
    encoders: dict[str, Part]
    shapes: dict[str, tuple[int, ...]]  # per modality, one sample's input shape (without the batch axis)
    sequence: dict[str, bool]
    note: str = ""
    input_dims: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.input_dims = {m: (s[1] if len(s) > 2 else s[-1]) for m, s in self.shapes.items()}  # clips: channels

    def inputs(self, device: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor | None]]:
        generator = torch.Generator().manual_seed(0)
        x = {m: torch.randn(1, *s, generator=generator).to(device) for m, s in self.shapes.items()}
        lengths = {m: (torch.tensor([s[0]], device=device) if self.sequence[m] else None) for m, s in self.shapes.items()}
        return x, lengths


def _extractor_output(part: Part, seconds: float) -> np.ndarray:
    from emofuse.features import EXTRACTORS

    extractor = EXTRACTORS.create(part.name, part.params)
    wave = np.random.default_rng(0).standard_normal(int(seconds * extractor.sample_rate)).astype(np.float32) * 0.1
    return extractor(wave)


def ravdess_setting(config_path: str | Path) -> Setting:
    """The config's encoders on its own feature dimensions (audio: the extractor's; visual: the sample's AU table)."""
    from emofuse.config.loading import load_config
    from emofuse.data.openface import read_clip_table
    from emofuse.data.sample import sample_dir

    config = load_config(config_path)
    shapes, sequence = {}, {}
    for m in config.model.encoders:
        if config.data.stored(m) is not None:
            raise ConfigError(f"{config_path}: the {m} branch reads {config.data.stored(m)}; the ravdess setting measures "
                              "encoders on what the packaged RAVDESS sample gives (audio, OpenFace action units)")
        if m == "audio":
            shapes[m] = tuple(_extractor_output(config.features.audio, 1.0).shape)
        else:
            shapes[m] = (len(read_clip_table(sample_dir() / config.data.visual.path)[1]),)
        sequence[m] = len(shapes[m]) > 1
    return Setting("ravdess", dict(config.model.encoders), shapes, sequence, f"encoders of {Path(config_path).name}")


def paper_setting(cnn_config_path: str | Path) -> Setting:
    """3D ResNeXt-50 on 30 x 224 x 224 face crops + the repository's 1D CNN on 2.45 s of MFCC frames."""
    from emofuse.config.loading import load_config

    config = load_config(cnn_config_path)
    audio = config.model.encoders["audio"]
    frames = _extractor_output(config.features.audio, AUDIO_SECONDS).shape
    return Setting(
        "paper",
        {"visual": Part(name="resnext3d"), "audio": audio},
        {"visual": (VIDEO_FRAMES, 3, VIDEO_SIZE, VIDEO_SIZE), "audio": tuple(frames)},
        {"visual": True, "audio": True},
        f"3D ResNeXt-50 (32x4d) on {VIDEO_FRAMES} face crops {VIDEO_SIZE}x{VIDEO_SIZE}; audio encoder of "
        f"{Path(cnn_config_path).name} on {AUDIO_SECONDS} s of its features",
    )


def loss_only_methods() -> list[str]:
    """Registered losses on the branch outputs only (no fused head of their own): with the average fusion they
    change training, not inference. Plain cross-entropy is the `average` row itself."""
    from emofuse.losses import LOSSES

    return [n for n in LOSSES.names() if n != "cross_entropy" and not getattr(LOSSES.get(n), "trains_fused_head", False)]


def count_macs(model: torch.nn.Module, x: dict, lengths: dict) -> int:
    from ptflops import get_model_complexity_info

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        macs, _ = get_model_complexity_info(model, (1,), input_constructor=lambda _: {"inputs": x, "lengths": lengths},
                                            as_strings=False, backend="pytorch", print_per_layer_stat=False)
    if macs is None:
        raise RuntimeError("ptflops could not count this model")
    return int(macs)


def _error(err: Exception) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"


def build(setting: Setting, fusion: str) -> tuple[dict, torch.nn.Module | None]:
    """A method's row with parameters and MACs, and its model in eval mode (None, and the reason, if it fails)."""
    from emofuse.models import create_model

    row = {"setting": setting.name, "method": fusion, "kind": "fusion", "fusion": fusion,
           "inputs": {m: [1, *s] for m, s in setting.shapes.items()}, "cpu_threads": torch.get_num_threads()}
    try:
        config = ModelConfig(encoders=setting.encoders, fusion=Part(name=fusion))
        model = create_model(config, setting.input_dims, setting.sequence, N_CLASSES).eval()
        row["params"] = model.n_parameters()  # the predictor: probes of a feature-level fusion are left out
        x, lengths = setting.inputs("cpu")
        macs = count_macs(model, x, lengths)
        row["gmacs"], row["gflops"] = macs / 1e9, 2 * macs / 1e9
        return row, model
    except Exception as err:  # noqa: BLE001  (a fusion that does not fit these encoders is reported, not fatal)
        row["error"] = _error(err)
        return row, None


def interleaved_latency(models: dict[str, torch.nn.Module], setting: Setting, device: str, repeats: int,
                        warmup: int) -> dict[str, float | str]:
    """Median ms per forward pass of each model. The models take turns within every round, so load from other
    processes on a shared machine falls on all methods alike instead of on whichever ran at a busy moment."""
    x, lengths = setting.inputs(device)
    times: dict[str, list[float]] = {name: [] for name in models}
    failed: dict[str, str] = {}
    for model in models.values():
        model.to(device)
    with torch.inference_mode():
        for i in range(warmup + repeats):
            for name, model in models.items():
                if name in failed:
                    continue
                try:
                    if device == "cuda":
                        torch.cuda.synchronize()
                    started = time.perf_counter()
                    model(x, lengths)
                    if device == "cuda":
                        torch.cuda.synchronize()
                except Exception as err:  # noqa: BLE001
                    failed[name] = _error(err)
                    continue
                if i >= warmup:
                    times[name].append((time.perf_counter() - started) * 1000)
    for model in models.values():
        model.to("cpu")
    return {name: failed.get(name) or statistics.median(t) for name, t in times.items()}


def cost_table(settings: list[Setting], devices: list[str], repeats: int = 10, warmup: int = 2,
               fusions: list[str] | None = None) -> list[dict]:
    """One row per (setting, method): every registered fusion, then the loss-only variants of `average`."""
    from emofuse.models import FUSIONS

    if repeats < 1 or warmup < 0:
        raise ConfigError("repeats must be at least 1 and warmup at least 0")
    require_extra("deploy", ("ptflops",), "emofuse cost (FLOPs are counted by ptflops)")
    rows = []
    for setting in settings:
        built = [build(setting, f) for f in (fusions or FUSIONS.names())]
        models = {row["method"]: model for row, model in built if model is not None}
        for device in devices:
            for name, ms in interleaved_latency(models, setting, device, repeats, warmup).items():
                row = next(r for r, _ in built if r["method"] == name)
                row.update({f"{device}_ms": ms} if isinstance(ms, float) else {"error": ms})
        measured = [row for row, _ in built]
        rows += measured
        average = next((r for r in measured if r["method"] == "average" and "error" not in r), None)
        for loss in loss_only_methods() if average else []:
            rows.append({**average, "method": loss, "kind": "loss", "note": "loss only: inference is the average fusion"})
        del models, built
    return rows


def devices_for(choice: str | None) -> list[str]:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available here")
    if choice == "cuda" or (choice is None and torch.cuda.is_available()):
        return ["cpu", "cuda"]
    return ["cpu"]


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.6g} {unit}"
    return f"{n:.4g}"


def markdown_table(rows: list[dict]) -> str:
    devices = [d for d in ("cpu", "cuda") if any(f"{d}_ms" in r for r in rows)]
    head = ["setting", "method", "params", "MACs", "FLOPs (2 x MACs)", *(f"{d} ms" for d in devices), "inputs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (3 + len(devices)) + ["---"]) + "|"]
    for r in rows:
        shapes = ", ".join(f"{m} {'x'.join(map(str, s))}" for m, s in r["inputs"].items())
        method = r["method"] + (" (loss, = average)" if r["kind"] == "loss" else "")
        if "error" in r:
            lines.append(f"| {r['setting']} | {method} | cannot be built or run: {r['error']} |" + " |" * (2 + len(devices)) + f" {shapes} |")
            continue
        cells = [r["setting"], method, f"{r['params']:,}", human(r["gmacs"] * 1e9), human(r["gflops"] * 1e9),
                 *(f"{r[f'{d}_ms']:.2f}" for d in devices), shapes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
