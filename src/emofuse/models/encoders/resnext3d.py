"""3D ResNeXt over face-crop clips (Hara et al. 2018), the visual backbone of the Mars paper.

Input: clips (B, T, 3, H, W), frames first as a video decoder yields them, with the true number of frames
``lengths`` (B,) when clips of different lengths are padded. ``begin`` permutes to the channels-first
(B, 3, T, H, W) layout of ``nn.Conv3d``. Stages: the stem (7x7x7 conv, stride 1x2x2, BN, ReLU, 3x3x3 max-pool
with stride 2) and the four layers of bottleneck blocks (grouped 3x3x3 convolutions, cardinality 32, shortcut
"B": a 1x1x1 projection where the shape changes), so model-fusion blocks can act between them. Padded frames
are zeroed wherever they could reach a valid frame (before every temporal convolution and max-pool) and the
pooled vector is the mean over valid frames and all positions, so a clip's vector does not depend on its batch's
padding. The defaults are the full ResNeXt-50 32x4d (25,865,664 parameters without a classifier; 25,882,056 with
the 8-class layer, the paper's 25.88 M); smaller ``stem`` / ``group_width`` / ``cardinality`` / ``blocks`` give
tiny shapes for CPU tests.

``weights`` starts training from a local checkpoint: this encoder's own state dict, or the Kinetics-pretrained
``resnext-50-kinetics.pth`` of Hara et al.'s 3D-ResNets-PyTorch (the backbone the Mars line of work fine-tunes),
whose layer names are mapped onto these stages (its 400-class ``fc`` is dropped). The file is read when a fold's
model is built for training (``load_pretrained``), never by predict or export, which load the run's own weights.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.core.registry import ConfigError

from emofuse.models.encoders.base import ENCODERS, Encoder


def halve(lengths: torch.Tensor) -> torch.Tensor:
    """Valid frames after a stride-2, kernel-3, padding-1 (or kernel-1) step in time: ceil(L / 2)."""
    return torch.div(lengths + 1, 2, rounding_mode="floor")


def zero_padding(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    mask = torch.arange(h.shape[2], device=h.device)[None, :] < lengths[:, None]
    return h * mask[:, None, :, None, None].to(h.dtype)


class Bottleneck(nn.Module):
    """1x1x1 reduce, grouped 3x3x3, 1x1x1 expand (x2), with a projection shortcut where the shape changes.

    Padded frames are zeroed before the 3x3x3 convolution and after the block, the two places where they
    would otherwise leak into valid frames (BN and ReLU make zeros non-zero)."""

    def __init__(self, in_channels: int, mid: int, cardinality: int, stride: int):
        super().__init__()
        out = 2 * mid
        self.stride = stride
        self.reduce = nn.Sequential(nn.Conv3d(in_channels, mid, 1, bias=False), nn.BatchNorm3d(mid), nn.ReLU(inplace=True))
        self.grouped = nn.Sequential(
            nn.Conv3d(mid, mid, 3, stride=stride, padding=1, groups=cardinality, bias=False), nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
        )
        self.expand = nn.Sequential(nn.Conv3d(mid, out, 1, bias=False), nn.BatchNorm3d(out))
        self.shortcut = (
            nn.Sequential(nn.Conv3d(in_channels, out, 1, stride=stride, bias=False), nn.BatchNorm3d(out))
            if stride != 1 or in_channels != out else nn.Identity()
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = zero_padding(self.reduce(x), lengths)
        if self.stride == 2:
            lengths = halve(lengths)
        h = self.expand(self.grouped(h))
        return zero_padding(torch.relu(h + self.shortcut(x)), lengths), lengths


class Stem(nn.Module):
    """7x7x7 convolution (stride 1 in time, 2 in space), BN, ReLU, 3x3x3 max-pool with stride 2."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv3d(3, channels, 7, stride=(1, 2, 2), padding=3, bias=False), nn.BatchNorm3d(channels), nn.ReLU(inplace=True)
        )
        self.pool = nn.MaxPool3d(3, stride=2, padding=1)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.pool(zero_padding(self.conv(h), lengths))  # ReLU output >= 0: zeroed frames never win the max
        lengths = halve(lengths)
        return zero_padding(h, lengths), lengths


class Layer(nn.Module):
    """A ResNeXt layer: bottleneck blocks, the first one with the layer's stride."""

    def __init__(self, in_channels: int, mid: int, cardinality: int, blocks: int, stride: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            Bottleneck(in_channels if i == 0 else 2 * mid, mid, cardinality, stride if i == 0 else 1) for i in range(blocks)
        )

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self.blocks:
            h, lengths = block(h, lengths)
        return h, lengths


@ENCODERS.register("resnext3d")
class ResNeXt3DEncoder(Encoder):
    compute_bound = True
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        blocks: list[int] = Field(default_factory=lambda: [3, 4, 6, 3], min_length=1, description="blocks per layer")
        cardinality: int = Field(32, ge=1, description="groups of the 3x3x3 convolutions")
        group_width: int = Field(4, ge=1, description="channels per group in the first layer (the '4d' of 32x4d)")
        stem: int = Field(64, ge=1, description="channels of the stem convolution")
        weights: str | None = Field(
            None, description="checkpoint to start from: this encoder's state dict or Hara et al.'s resnext-50-kinetics.pth"
        )

    def __init__(self, params: Params, input_dim: int = 3, sequence: bool = True):
        super().__init__()
        if input_dim != 3:
            raise ValueError(f"the resnext3d encoder takes RGB clips (B, T, 3, H, W); got {input_dim} channels per frame")
        mids = [params.cardinality * params.group_width * 2**i for i in range(len(params.blocks))]
        widths = [params.stem, *(2 * m for m in mids)]
        self.stages = nn.ModuleList([Stem(params.stem)])
        for i, (mid, n) in enumerate(zip(mids, params.blocks)):
            self.stages.append(Layer(widths[i], mid, params.cardinality, n, 1 if i == 0 else 2))
        self.stage_dims = widths
        self.out_dim = widths[-1]
        self.weights = params.weights
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def begin(self, x: torch.Tensor, lengths: torch.Tensor | None):
        if x.dim() != 5 or x.shape[2] != 3:
            raise ValueError(f"resnext3d expects clips (B, T, 3, H, W); got shape {tuple(x.shape)}")
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], device=x.device, dtype=torch.long)
        return zero_padding(x.transpose(1, 2), lengths), lengths  # (B, 3, T, H, W)

    def pool(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = (lengths.clamp(min=1) * h.shape[3] * h.shape[4]).to(h.dtype)
        return h.sum(dim=(2, 3, 4)) / valid[:, None]  # padded frames are zero

    def load_pretrained(self) -> None:
        if self.weights is not None:
            self.load_state_dict(read_checkpoint(Path(self.weights), self.state_dict()))


# Hara et al.'s names (after a DataParallel "module." prefix) -> this encoder's.
HARA_NAMES = [
    (r"^conv1\.", "stages.0.conv.0."), (r"^bn1\.", "stages.0.conv.1."),
    (r"^layer(\d)\.(\d+)\.conv1\.", r"stages.\1.blocks.\2.reduce.0."), (r"^layer(\d)\.(\d+)\.bn1\.", r"stages.\1.blocks.\2.reduce.1."),
    (r"^layer(\d)\.(\d+)\.conv2\.", r"stages.\1.blocks.\2.grouped.0."), (r"^layer(\d)\.(\d+)\.bn2\.", r"stages.\1.blocks.\2.grouped.1."),
    (r"^layer(\d)\.(\d+)\.conv3\.", r"stages.\1.blocks.\2.expand.0."), (r"^layer(\d)\.(\d+)\.bn3\.", r"stages.\1.blocks.\2.expand.1."),
    (r"^layer(\d)\.(\d+)\.downsample\.", r"stages.\1.blocks.\2.shortcut."),
]


def read_checkpoint(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A full state dict for this encoder from ``path``, or a ConfigError naming the file and what does not fit."""
    if not path.is_file():
        raise ConfigError(f"{path}: resnext3d weights file does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (not a torch file, truncated, pickled objects ...)
        raise ConfigError(f"{path}: cannot read resnext3d weights ({type(err).__name__}: {str(err)[:200]})") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: holds no state dict")
    mapped = {}
    for name, tensor in state.items():
        name = name.removeprefix("module.")
        if name.startswith("fc."):
            continue  # Kinetics' classifier
        for pattern, replacement in HARA_NAMES:
            name = re.sub(pattern, replacement, name)
        mapped[name] = tensor
    mapped = {k: v for k, v in mapped.items() if not k.endswith("num_batches_tracked") or k in expected}
    missing = [k for k in expected if k not in mapped and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in mapped if k not in expected]
    wrong = [f"{k} {tuple(mapped[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in mapped and mapped[k].shape != v.shape]
    if missing or unexpected or wrong:
        problems = [f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
                    f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
                    f"{len(wrong)} of another shape (e.g. {wrong[:2]})" if wrong else ""]
        raise ConfigError(f"{path}: does not fit this resnext3d (blocks, cardinality, group_width, stem): "
                          + "; ".join(p for p in problems if p))
    return {k: mapped.get(k, v) for k, v in expected.items()}
