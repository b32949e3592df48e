"""`emofuse export`: one fold's selected model of an `emofuse cv` run as ONNX (or TorchScript), checked.

The exported graph is the PyTorch model itself: named inputs per modality (``audio``, ``visual``, ...; for frame
sequences and face clips also ``<modality>_lengths``, int64 valid frames per clip), batch and frame axes dynamic,
and outputs ``probs`` (fused) plus ``probs_<modality>`` (each branch's softmax). Inputs are the model's inputs, i.e.
features standardised as in training (the fold's ``standardizer.json``, after speaker normalisation where the run
used it); face clips are (B, T, 3, S, S) floats standardised per colour channel.

ONNX goes through ``torch.onnx.export(dynamo=True)`` and is accepted only if onnxruntime reproduces PyTorch's
outputs within ``atol`` on random inputs of other batch sizes and lengths than the export's example. Where the
exporter fails or onnxruntime cannot load, run or match the graph (e.g. the FFTs of compact bilinear pooling), the
model is traced to TorchScript instead, checked the same way, and the reason is reported.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emofuse.core.atomic import temporary_file
from emofuse.core.registry import ConfigError, require_extra
from emofuse.core.runs import write_json
from emofuse.metrics.calibration import Temperatures
from emofuse.inference.run_record import run_data_record

ATOL = 1e-5  # max |ONNX - PyTorch| over every output probability
CHECK_SHAPES = [(3, 53), (1, 11), (5, 120)]  # (batch, frames) of the random check inputs; the export example is (2, 37)


@dataclass
class ExportResult:
    path: str
    format: str  # "onnx" or "torchscript"
    fold: int
    inputs: list[str]
    outputs: list[str]
    max_abs_diff: float
    atol: float
    checks: int
    fallback_reason: str | None = None


class ExportWrapper(nn.Module):
    """Flat tensors in (per modality: features, then lengths for sequences), flat probabilities out."""

    def __init__(self, model: nn.Module, modalities: list[str], sequence: dict[str, bool],
                 frame_shapes: dict[str, tuple[int, ...]], max_frames: dict[str, int] | None = None):
        super().__init__()
        self.model, self.modalities, self.sequence = model, modalities, sequence
        self.frame_shapes = frame_shapes  # one frame's (or one clip vector's) shape: (D,), or (3, S, S) for face clips
        self.max_frames = max_frames or {}  # face clips are checked at most at the length they were trained on

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs, lengths, i = {}, {}, 0
        for m in self.modalities:
            inputs[m] = tensors[i]
            i += 1
            if self.sequence[m]:
                lengths[m] = tensors[i]
                i += 1
        out = self.model(inputs, lengths)
        return (out.probs.float(), *(out.branch_logits[m].float().softmax(-1) for m in self.modalities))

    def input_names(self) -> list[str]:
        return [n for m in self.modalities for n in ([m, f"{m}_lengths"] if self.sequence[m] else [m])]

    def output_names(self) -> list[str]:
        return ["probs", *(f"probs_{m}" for m in self.modalities)]

    def example(self, batch: int, frames: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        out = []
        for m in self.modalities:
            if self.sequence[m]:
                n = min(frames, self.max_frames.get(m, frames))
                lengths = torch.randint(1, n + 1, (batch,), generator=generator)
                lengths[0] = n  # the longest clip fills the padded length
                out += [torch.randn(batch, n, *self.frame_shapes[m], generator=generator), lengths]
            else:
                out.append(torch.randn(batch, *self.frame_shapes[m], generator=generator))
        return tuple(out)

    def dynamic_shapes(self) -> tuple:
        dyn = torch.export.Dim.DYNAMIC
        shapes = []
        for m in self.modalities:
            shapes += [{0: dyn, 1: dyn}, {0: dyn}] if self.sequence[m] else [{0: dyn}]
        return (tuple(shapes),)


def feature_dims(run_dir: Path, modalities: list[str]) -> dict[str, int]:
    path = run_dir / "data_fingerprint.json"
    try:
        dims = json.loads(path.read_text())["feature_dims"]
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"{path}: cannot read the feature dimensions ({type(err).__name__}: {err})") from None
    missing = [m for m in modalities if m not in dims]
    if missing:
        raise ConfigError(f"{path}: no feature dimension for {missing}")
    return {m: int(dims[m]) for m in modalities}


def load_run_model(run_dir: str | Path, fold: int | None = None):
    """(wrapper around the fold's selected model in eval mode, fold number, feature dims): the fold as `emofuse predict`
    loads it (inference/predict.Predictor, the one run loader), the lowest finished fold unless ``fold`` names one."""
    from emofuse.inference.predict import Predictor

    predictor = Predictor(run_dir, fold=fold)
    member = predictor.folds[0]
    modalities = list(predictor.config.model.encoders)
    dims = feature_dims(predictor.run_dir, modalities)
    sequence = {m: bool(predictor.sequence.get(m, False)) for m in modalities}
    frame_shapes, max_frames = {m: (d,) for m, d in dims.items()}, {}
    if predictor.video is not None and predictor.video.clips:
        size = predictor.video.params.size
        frame_shapes["visual"], max_frames["visual"] = (dims["visual"], size, size), predictor.video.params.frames
    return ExportWrapper(member.model, modalities, sequence, frame_shapes, max_frames), member.index, dims


def _quiet():
    """The exporters print progress and warnings (torchvision ops, deprecations); keep the console for the check."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    stack.callback(onnx_log.setLevel, level)
    return stack


def max_difference(run, wrapper: ExportWrapper, seed: int = 0) -> float:
    """Largest |exported - PyTorch| over all outputs, on random inputs of CHECK_SHAPES."""
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch, frames in CHECK_SHAPES:
        x = wrapper.example(batch, frames, generator)
        with torch.no_grad():
            expected = wrapper(*x)
        got = run(x)
        if len(got) != len(expected):
            raise RuntimeError(f"{len(got)} outputs, expected {len(expected)}")
        for g, e in zip(got, expected):
            g = np.asarray(g)
            if g.shape != tuple(e.shape):
                raise RuntimeError(f"output shape {g.shape}, PyTorch gives {tuple(e.shape)}")
            worst = max(worst, float(np.abs(g - e.numpy()).max()))
    return worst


def _onnx(wrapper: ExportWrapper, tmp: Path) -> float:
    import onnxruntime as ort

    example = wrapper.example(2, 37, torch.Generator().manual_seed(1))
    with _quiet():
        torch.onnx.export(wrapper, example, str(tmp), dynamo=True, input_names=wrapper.input_names(),
                          output_names=wrapper.output_names(), dynamic_shapes=wrapper.dynamic_shapes(),
                          external_data=False)
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    names = wrapper.input_names()
    return max_difference(lambda x: session.run(None, {n: t.numpy() for n, t in zip(names, x)}), wrapper)


def _torchscript(wrapper: ExportWrapper, tmp: Path) -> float:
    example = wrapper.example(2, 37, torch.Generator().manual_seed(1))
    with _quiet(), torch.no_grad():
        torch.jit.trace(wrapper, example, check_trace=False).save(str(tmp))
        loaded = torch.jit.load(str(tmp))
        return max_difference(lambda x: [t.numpy() for t in loaded(*x)], wrapper)


def _parts(wrapper: ExportWrapper) -> str:
    model = wrapper.model
    encoders = ", ".join(f"{m}: {getattr(e, 'registry_name', type(e).__name__)}" for m, e in model.encoders.items())
    return f"fusion {getattr(model.fusion, 'registry_name', type(model.fusion).__name__)} (encoders {encoders})"


def _reason(err: Exception) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}"


def export_run(run_dir: str | Path, fold: int | None = None, out: str | Path | None = None, fmt: str = "onnx",
               atol: float = ATOL) -> ExportResult:
    """Export, check against PyTorch, and only then move the file into place (with a JSON description beside it)."""
    if fmt not in ("onnx", "torchscript"):
        raise ConfigError(f"format must be onnx or torchscript, not {fmt!r}")
    run_dir = Path(run_dir)
    if fmt == "onnx":
        require_extra("deploy", ("onnx", "onnxscript", "onnxruntime"), "ONNX export (or use --format torchscript)")
    wrapper, k, dims = load_run_model(run_dir, fold)
    attempts = [("onnx", _onnx), ("torchscript", _torchscript)] if fmt == "onnx" else [("torchscript", _torchscript)]
    suffix = {"onnx": ".onnx", "torchscript": ".pt"}
    target_dir = Path(out).parent if out else run_dir / "export"
    target_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for kind, attempt in attempts:
        with temporary_file(target_dir, ".export.", suffix[kind]) as (tmp, _):
            pass  # reserved for the exporter, with the permissions of the user's umask
        try:
            diff = attempt(wrapper, tmp)
            if not diff <= atol:
                raise RuntimeError(f"outputs differ from PyTorch by {diff:.3g} > atol {atol:g}")
        except Exception as err:  # noqa: BLE001  (any exporter / runtime failure means: try the next format)
            tmp.unlink(missing_ok=True)
            failures.append(f"{kind} of {_parts(wrapper)} failed: {_reason(err).replace(str(tmp), 'the exported graph')}")
            continue
        path = Path(out) if out else target_dir / f"fold_{k}{suffix[kind]}"
        if kind != fmt and out and path.suffix != suffix[kind]:
            path = path.with_suffix(suffix[kind])  # a TorchScript fallback is not an .onnx file
        os.replace(tmp, path)
        result = ExportResult(str(path), kind, k, wrapper.input_names(), wrapper.output_names(), diff, atol,
                              len(CHECK_SHAPES), "; ".join(failures) or None)
        write_json(path.with_suffix(".json"), {
            **asdict(result), "run_dir": str(run_dir), "modalities": wrapper.modalities, "sequence": wrapper.sequence,
            "feature_dims": dims, "frame_shapes": wrapper.frame_shapes, "class_names": run_data_record(run_dir)["class_names"],
            "inputs_are": f"model inputs: features standardised as in training ({run_dir}/folds/fold_{k}/standardizer.json)",
            "calibration": {**Temperatures.of_fold(run_dir / "folds" / f"fold_{k}").to_dict(),
                            "note": "the outputs are the model's own probabilities; emofuse predict answers "
                                    "softmax(log p / temperature) (branch_temperatures for probs_<modality>)"},
        })
        return result
    raise ConfigError(f"{run_dir} fold {k}: the model could not be exported: " + "; ".join(failures))

