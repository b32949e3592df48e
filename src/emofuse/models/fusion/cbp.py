"""Compact bilinear pooling of two modalities (Gao et al. 2016; Fukui et al. 2016).

Each vector is count-sketched to d dimensions, Psi(h) = sum_i s[i] h_i e_{k[i]} with fixed random hashes k and
signs s; the sketch of the outer product x (x) y is the circular convolution of the two sketches, computed as
IFFT(FFT(Psi(x)) FFT(Psi(y))). Its inner products approximate those of the full outer product:
<CBP(x, y), CBP(x', y')> ~ <x, x'> <y, y'>. Signed square root and L2 normalisation follow, then a classifier.
The pooling is bilinear, a product of two vectors: the fusion takes exactly two modalities.

A bilinear code alone has no unimodal terms: what one modality shows whatever the other does must be read through
products x_i y_j. With ``skip`` the classifier reads the modalities' vectors beside the pooled code, [CBP(x, y); x; y],
a linear path around the pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from emofuse.models.fusion.base import FUSIONS, FusedClassifier, FusionInputs


class CountSketch(nn.Module):
    """Fixed (not trained) projection R^D -> R^d by a random hash and sign per input dimension."""

    def __init__(self, in_dim: int, out_dim: int, generator: torch.Generator):
        super().__init__()
        index = torch.randint(out_dim, (in_dim,), generator=generator)
        sign = torch.randint(2, (in_dim,), generator=generator).float() * 2 - 1
        matrix = torch.zeros(in_dim, out_dim)
        matrix[torch.arange(in_dim), index] = sign
        self.register_buffer("matrix", matrix)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.matrix


def compact_bilinear(sketches: list[torch.Tensor]) -> torch.Tensor:
    """Circular convolution of the count sketches (B, d) via the FFT: the sketch of their outer product."""
    d = sketches[0].shape[1]
    spectrum = torch.ones((), dtype=torch.complex64, device=sketches[0].device)
    for s in sketches:
        spectrum = spectrum * torch.fft.rfft(s.float(), n=d)
    return torch.fft.irfft(spectrum, n=d)


@FUSIONS.register("cbp")
class CompactBilinearFusion(FusedClassifier):
    modality_counts = (2,)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        output_dim: int = Field(1024, ge=8, description="sketch size d")
        seed: int = Field(0, description="fixes the hashes, so a checkpoint always meets the same sketches")
        dropout: float = Field(0.3, ge=0, lt=1)
        skip: bool = Field(False, description="the classifier also reads each modality's vector: [CBP(x, y); x; y]")

    def __init__(self, params: Params, feature_dims, n_classes, stage_dims=None):
        super().__init__(params, feature_dims, n_classes, stage_dims)
        generator = torch.Generator().manual_seed(params.seed)
        self.sketch = nn.ModuleDict({m: CountSketch(d, params.output_dim, generator) for m, d in feature_dims.items()})
        self.build_head(params.output_dim + (sum(feature_dims.values()) if params.skip else 0), params.dropout)

    def fuse(self, inputs: FusionInputs) -> torch.Tensor:
        z = compact_bilinear([self.sketch[m](inputs.features[m]) for m in self.feature_dims])
        z = F.normalize(torch.sign(z) * torch.sqrt(z.abs() + 1e-8), dim=1)
        return torch.cat([z, *(inputs.features[m] for m in self.feature_dims)], dim=1) if self.params.skip else z
