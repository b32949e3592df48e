"""The optimiser: AdamW with the fused kernel where this torch has one for the device.

The fused kernel (one kernel for all parameters) is the fastest AdamW step for the many small tensors of our models.
torch has it on CUDA for long and on CPU only from 2.4 on, while the package supports torch 2.3: there the constructor
refuses ``fused=True`` for CPU tensors, and the multi-tensor ``foreach`` path (the same update up to rounding) is used.
"""

from __future__ import annotations

import torch


def adamw(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    params = list(params)
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
        except RuntimeError as err:  # torch < 2.4 on CPU: "`fused=True` requires ... supported devices"
            if "fused" not in str(err):
                raise
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
