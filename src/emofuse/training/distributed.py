"""Data-parallel training of one model under ``torchrun`` (DistributedDataParallel).

``torchrun --nproc-per-node N -m emofuse cv CONFIG --out DIR`` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK in their environment; :func:`process_group` joins them (nccl on CUDA,
one GPU per local rank; gloo on CPU). Without those variables, or with one process, nothing here
does anything and training is the plain single-process loop.

What makes N processes train like one process with the same global batch:

- every rank seeds identically, so it builds identical initial weights and draws the same shuffle
  order (and crop windows) from the same generator; it builds the whole global batch and trains on
  its contiguous slice of the rows (:func:`shard_batch`), so the steps per epoch are the same;
- the local loss is scaled by ``n_local * world / n_global`` before DDP averages the gradients,
  which makes the averaged gradient the gradient of the global batch's mean loss, also when the
  batch does not split evenly;
- per-epoch training losses are summed over ranks (:func:`sum_over_ranks`), and a loss that normalises by a batch
  statistic (Mars ``normalize``) takes it over the global batch (``losses.base.global_mean``);
- validation and test sets are scored whole on every rank with the (identical) weights instead of
  being split and gathered: no communication, the metrics are the single-process metrics exactly,
  and every rank takes the same early-stopping and best-epoch decisions (diverging decisions would
  leave ranks waiting for each other forever). The cost is that evaluation is not sped up;
- BatchNorm becomes SyncBatchNorm (statistics of the global batch) on CUDA. PyTorch's DDP refuses
  SyncBatchNorm on CPU modules ("SyncBatchNorm layers only work with GPU modules", torch 2.13), so
  on CPU each rank normalises with its own slice's statistics: such a model trains close to, not
  exactly like, the single-process one (a warning says so). ``norm: layer`` or ``none`` in the mlp
  encoder avoids the difference;
- dropout masks differ between ranks (each draws its own), so only dropout 0 matches exactly.

Only rank 0 writes files; a resumed run takes rank 0's checkpoint (:func:`from_main`), so other
nodes need no copy of the run directory. What is left is floating-point summation order: results
agree with the single-process run to about 1e-6 relative per step, not bit for bit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from emofuse.core.registry import ConfigError
from emofuse.training.batches import Batch

log = logging.getLogger(__name__)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, or a plain single process: the one that writes files and prints."""
    return rank() == 0


@contextmanager
def process_group() -> Iterator[None]:
    """Join the torchrun job the environment describes; a no-op in a plain single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        yield
        return
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    log.info("rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), dist.get_backend())
    try:
        yield
    finally:
        dist.destroy_process_group()


def wrap(model: nn.Module) -> nn.Module | None:
    """The DDP wrapper used for training steps (the bare ``model`` stays for evaluation); None when not distributed."""
    if not active():
        return None
    cuda = next(model.parameters()).is_cuda
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if cuda:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # replaces the children in place
    elif has_bn and is_main():
        log.warning("BatchNorm on CPU: each of the %d ranks normalises with its own slice of the batch (DDP allows "
                    "SyncBatchNorm only on GPUs), so training is close to, not equal to, one process", world_size())
    return nn.parallel.DistributedDataParallel(model, device_ids=[torch.cuda.current_device()] if cuda else None)


def shard_batch(batch: Batch) -> tuple[Batch, float]:
    """This rank's contiguous slice of a global batch, and the factor that makes its loss a share of the global mean."""
    n, world = len(batch.target), world_size()
    if n < world:
        raise ConfigError(f"a batch of {n} rows cannot be split over {world} processes; raise train.batch_size")
    rows = torch.tensor_split(torch.arange(n), world)[rank()]
    local = Batch(
        inputs={m: x[rows] for m, x in batch.inputs.items()},
        lengths={m: (lens[rows] if lens is not None else None) for m, lens in batch.lengths.items()},
        target=batch.target[rows],
        index=batch.index[rows],
        class_mask=batch.class_mask[rows] if batch.class_mask is not None else None,
        presence={m: p[rows] for m, p in batch.presence.items()} if batch.presence else None,
    )
    return local, len(rows) * world / n


def sum_over_ranks(sums: dict[str, float], seen: int) -> tuple[dict[str, float], int]:
    """Per-epoch sums of the training losses (and the sample count) over all ranks."""
    keys = list(sums)  # the same order on every rank: the same code filled it
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    values = torch.tensor([sums[k] for k in keys] + [float(seen)], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    totals = values.tolist()
    return dict(zip(keys, totals[:-1])), int(round(totals[-1]))


def from_main(obj: Any) -> Any:
    """Rank 0's value of ``obj`` on every rank (e.g. the checkpoint it resumes from); ``obj`` itself when alone."""
    if not active():
        return obj
    holder = [obj if is_main() else None]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier() -> None:
    if active():
        dist.barrier()
