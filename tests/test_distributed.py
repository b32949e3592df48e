"""`torchrun --nproc-per-node 2 -m emofuse cv` (DDP, gloo on CPU) trains like one process with the same global batch.

Tolerance: every per-epoch training loss, validation loss (nll) and learning rate within 1e-4 relative of
the one-process run, and the validation and test accuracies equal. What differs is only floating-point
summation order (gradients summed per half batch, then averaged over the ranks): about 1e-7 per step.
"""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import yaml

from emofuse.config.loading import config_from_dict
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.losses import LOSSES
from emofuse.models import ModelOutput
from emofuse.training import distributed
from emofuse.training.batches import TensorData

# No batch-norm (DDP allows SyncBatchNorm only on GPUs) and no dropout (each rank draws its own masks).
# The visual branch only: no audio extraction to wait for. batch_size 15 does not split evenly over 2 ranks.
DDP_TINY = {
    "name": "ddp_tiny",
    "seed": 1,
    "data": {"modalities": ["visual"]},
    "features": {"speaker_norm": True, "workers": 1},
    "model": {"encoders": {"visual": {"name": "mlp", "params": {"hidden": [32, 16], "dropout": 0.0, "norm": "layer"}}},
              "dropout": 0.0},
    "loss": {"name": "mars", "params": {"gamma": 1.0, "switch_epoch": 2}},
    "train": {"epochs": 6, "batch_size": 15, "ema_decay": 0.9, "early_stopping": {"patience": 3}},
    "protocol": {"n_folds": 3, "val_fraction": 0.25},
}


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(ravdess_fixture, tmp_path):
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(DDP_TINY))
    one = run_cross_validation(config_from_dict(DDP_TINY), ravdess_fixture, tmp_path / "one", tmp_path / "cache",
                               progress=False, only_folds=[1])

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "emofuse", "cv", str(config), "--data", str(ravdess_fixture), "--cache", str(tmp_path / "cache"),
           "--out", str(tmp_path / "two"), "--folds", "1", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "results.json").read_text())

    h1 = pd.read_csv(tmp_path / "one" / "folds" / "fold_1" / "history.csv").drop(columns="seconds")
    h2 = pd.read_csv(tmp_path / "two" / "folds" / "fold_1" / "history.csv").drop(columns="seconds")
    assert list(h1.columns) == list(h2.columns) and len(h1) == len(h2)  # same epochs, same early stop
    numeric = [c for c in h1.columns if c.startswith("train/") or c in ("lr", "val/nll")]
    pd.testing.assert_frame_equal(h1[numeric], h2[numeric], rtol=1e-4, atol=1e-7)
    accuracy = [c for c in h1.columns if "accuracy" in c]
    pd.testing.assert_frame_equal(h1[accuracy], h2[accuracy], rtol=0, atol=1e-12)
    assert two["folds"][0]["best_epoch"] == one["folds"][0]["best_epoch"]
    assert two["folds"][0]["accuracy"] == one["folds"][0]["accuracy"]
    leftovers = [p.name for p in (tmp_path / "two").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []  # one writer: no clashing temporary files


def test_each_rank_takes_its_slice_of_the_global_batch(monkeypatch):
    data = TensorData({"visual": torch.arange(14.0).reshape(7, 2).numpy()}, torch.arange(7).numpy())
    batch = next(data.batches(7))
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    rows, shares = [], []
    for r in range(2):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        local, share = distributed.shard_batch(batch)
        rows.append(local.target.tolist())
        shares.append(share)
        assert torch.equal(local.inputs["visual"], batch.inputs["visual"][local.target])
    assert rows == [[0, 1, 2, 3], [4, 5, 6]]  # disjoint, contiguous, covering the batch
    # Local mean losses scaled by these shares and averaged over ranks (as DDP does) give the global mean.
    assert shares == pytest.approx([4 * 2 / 7, 3 * 2 / 7])


def test_single_process_is_not_distributed():
    assert not distributed.active() and distributed.is_main() and distributed.world_size() == 1
    assert distributed.from_main("x") == "x"


MARS_NORMALIZED = {"gamma": {"audio": 2.0, "visual": 0.5}, "switch_epoch": 0, "normalize": True}


def mars_batch():
    """15 rows of branch logits (an uneven split over 2 ranks), as a global batch's inputs."""
    g = torch.Generator().manual_seed(0)
    logits = {"audio": torch.randn(15, 8, generator=g) * 3, "visual": torch.randn(15, 8, generator=g)}
    target = torch.randint(0, 8, (15,), generator=g)
    return next(TensorData({m: z.numpy() for m, z in logits.items()}, target.numpy()).batches(15))


def mars_on_this_rank(batch) -> tuple[dict, float]:
    """Normalised Mars weights of this rank's slice, and its loss scaled by its share as the trainer scales it."""
    local, share = distributed.shard_batch(batch)
    loss = LOSSES.create("mars", MARS_NORMALIZED, modalities=["audio", "visual"])
    weights = loss.branch_weights(local.inputs, local.target, epoch=0)
    total = loss(ModelOutput(branch_logits=local.inputs, probs=torch.zeros(1)), local.target, epoch=0).total
    return weights, float(total) * share


def _mars_rank(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        torch.save(mars_on_this_rank(mars_batch()), f"{out}/rank_{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_mars_normalises_by_the_global_batch_mean_over_two_gloo_processes(tmp_path):
    """Issue 22: each rank divides by the mean weight of the whole batch, not of its half."""
    torch.multiprocessing.spawn(_mars_rank, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank_{r}.pt") for r in range(2)]
    one_weights, one_total = mars_on_this_rank(mars_batch())
    for m, w in one_weights.items():
        torch.testing.assert_close(torch.cat([weights[m] for weights, _ in ranks]), w, rtol=1e-6, atol=1e-7)
    assert sum(total for _, total in ranks) / 2 == pytest.approx(one_total, rel=1e-6)  # DDP's average of the ranks


def test_mars_normalises_by_its_own_batch_mean_in_one_process():
    batch = mars_batch()
    normed = LOSSES.create("mars", MARS_NORMALIZED, modalities=["audio", "visual"])
    paper = LOSSES.create("mars", {**MARS_NORMALIZED, "normalize": False}, modalities=["audio", "visual"])
    n, w = normed.branch_weights(batch.inputs, batch.target, 0), paper.branch_weights(batch.inputs, batch.target, 0)
    assert all(torch.equal(n[m], w[m] / w[m].mean()) for m in w)
