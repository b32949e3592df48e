"""One training loop for every model and loss in emofuse.

AdamW with linear warm-up and cosine decay per step, gradient-norm clipping, optional EMA of the
weights (evaluated instead of the raw weights; training/ema.py), bf16 autocast on CUDA, early stopping and
best-epoch selection on a validation metric, and a checkpoint after every epoch from which an
interrupted run resumes exactly (weights, optimiser, scheduler, EMA, callbacks and RNG states).
With ``min_epoch_steps``, an epoch on few training rows makes several passes over them, so that a
recipe's epochs (warm-up, patience, EMA horizon, the cosine) last as many steps on small data as on large.
Without validation data (a final fit on every speaker, ``final_epoch``), the loop runs the same schedule up to
the epoch that cross-validation selected and keeps that epoch's weights.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from emofuse.config.schema import Passes, TrainConfig
from emofuse.losses.base import LossOutput
from emofuse.core.registry import ConfigError
from emofuse.training import distributed
from emofuse.training.batches import TensorData
from emofuse.training.budget import fold_budget, minimum_epochs
from emofuse.training.callbacks import BestTracker, EarlyStopping
from emofuse.training.ema import ema_horizon, ema_model
from emofuse.training.seeding import restore_rng_state, rng_state
from emofuse.training.timescales import resolve_ema_decay, resolve_weight_decay

log = logging.getLogger(__name__)

Evaluator = Callable[[nn.Module, TensorData], dict[str, float]]


@dataclass
class FitResult:
    best_state: dict  # weights of the selected epoch (EMA weights when EMA is on)
    best_epoch: int
    best_metrics: dict[str, float]
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    budget: dict = field(default_factory=dict)  # training/budget.py: schedule length, minimum epochs, why it stopped
    steps_per_epoch: int = 0  # optimiser steps per epoch, passes over the training rows included


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def cosine_with_warmup(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        evaluate: Evaluator,
        checkpoint_dir: str | Path | None = None,
        seed: int = 0,
        epoch_callbacks: list[Callable[[int, dict], None]] | None = None,
        adversary: nn.Module | None = None,
        final_epoch: int | None = None,
    ):
        self.config = config
        self.evaluate = evaluate
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.seed = seed
        self.epoch_callbacks = epoch_callbacks or []
        self.adversary = adversary  # training/speaker_adversary.py: an extra loss on the branch embeddings
        self.final_epoch = final_epoch  # fit without validation: stop after this epoch and keep its weights
        if final_epoch is not None and not 0 <= final_epoch < config.epochs:
            raise ConfigError(f"the final epoch {final_epoch} is outside the schedule of train.epochs = {config.epochs}")
        self.device = resolve_device(config.device)
        self.use_amp = config.amp == "auto" and self.device.type == "cuda"

    def fit(self, model: nn.Module, loss_fn: nn.Module, train: TensorData, val: TensorData | None) -> FitResult:
        """``val`` None: a final fit (``final_epoch`` set), nothing to select on."""
        if (val is None) != (self.final_epoch is not None):
            raise ValueError("a fit without validation data needs final_epoch, and one with it must not have it")
        cfg = self.config
        model.to(self.device)
        loss_fn.to(self.device)
        ddp = distributed.wrap(model)  # under torchrun only (see training/distributed.py); None in one process
        adversary = self.adversary
        if adversary is not None:
            if ddp is not None:
                raise ConfigError("train.speaker_adversary is not supported under torchrun (its heads are not synchronised)")
            adversary.to(self.device)
        trained = [*model.parameters(), *(adversary.parameters() if adversary is not None else [])]
        step_model = ddp if ddp is not None else model
        steps_per_pass = len(train) // cfg.batch_size if len(train) > cfg.batch_size else 1  # whole batches (drop_last)
        passes = math.ceil(cfg.min_epoch_steps / steps_per_pass) if cfg.min_epoch_steps else 1
        steps_per_epoch = passes * steps_per_pass
        # The schedule counts the partial batch that drop_last drops, as it always has: existing configs train as they did.
        scheduled_per_epoch = passes * math.ceil(len(train) / cfg.batch_size)
        weight_decay = resolve_weight_decay(cfg.weight_decay, cfg.lr, steps_per_pass)
        ema_decay = resolve_ema_decay(cfg.ema_decay, steps_per_pass)
        in_passes = isinstance(cfg.weight_decay, Passes) or isinstance(cfg.ema_decay, Passes)  # then worth a line
        log.log(logging.INFO if in_passes else logging.DEBUG,
                "%d optimiser steps per pass over the training rows; weight decay %.4g, EMA decay %s",
                steps_per_pass, weight_decay, "off" if ema_decay is None else f"{ema_decay:.5f}")
        optimizer = torch.optim.AdamW(
            trained, lr=cfg.lr, weight_decay=weight_decay, fused=self.device.type in ("cpu", "cuda")
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, cosine_with_warmup(cfg.epochs * scheduled_per_epoch, cfg.warmup_epochs * scheduled_per_epoch)
        )
        ema = ema_model(model, ema_decay, cfg.ema_warmup) if ema_decay else None
        es_cfg = cfg.early_stopping
        monitor, mode = (es_cfg.monitor, es_cfg.mode) if es_cfg else getattr(self.evaluate, "selection_metric", ("accuracy", "max"))
        stage_start = getattr(loss_fn, "stage_start_epoch", 0)  # losses outside the LOSSES registry have one stage
        min_epochs = minimum_epochs(es_cfg, cfg.epochs, stage_start)
        if stage_start is None and cfg.select_from_last_stage:  # decided during training (Mars switch_epoch: auto)
            raise ConfigError("train.select_from_last_stage needs a stage start known before training; this loss "
                              "decides it from the validation loss (Mars switch_epoch: auto)")
        selection_from = stage_start if cfg.select_from_last_stage else 0
        if stage_start is not None and stage_start >= cfg.epochs:
            if cfg.select_from_last_stage:
                raise ConfigError(f"train.select_from_last_stage: the loss's last stage starts at epoch {stage_start}, "
                                  f"after the last of train.epochs = {cfg.epochs}")
            log.warning("the loss's last stage starts at epoch %d, after the last of %d epochs: it never acts",
                        stage_start, cfg.epochs)
        if val is None and stage_start is None:
            raise ConfigError("a fit without validation data cannot run a loss that decides from validation data "
                              "(Mars switch_epoch: auto); fix its switch epoch")
        stopper = EarlyStopping(monitor, mode, es_cfg.patience, min_epochs) if es_cfg and val is not None else None
        tracker = BestTracker(monitor, mode, first_epoch=selection_from)
        budget = {"schedule_epochs": cfg.epochs, "min_epochs": min_epochs, "stage_start": stage_start,
                  "selection_from_epoch": selection_from}

        def follow_stage_decision() -> None:
            """A stage start the loss decides during training: early stopping waits for it plus a patience window."""
            decided = getattr(loss_fn, "stage_start_epoch", 0)
            if decided != budget["stage_start"]:
                budget["stage_start"] = decided
                budget["min_epochs"] = minimum_epochs(es_cfg, cfg.epochs, decided)
                if stopper is not None:
                    stopper.min_epochs = budget["min_epochs"]

        shuffle_gen = torch.Generator().manual_seed(self.seed)
        best_state: dict = {}
        history: list[dict] = []
        start_epoch = 0

        last_path = self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None
        ckpt = None
        if last_path is not None and distributed.is_main() and last_path.is_file():
            ckpt = torch.load(last_path, map_location=self.device, weights_only=False)
        if ddp is not None:
            ckpt = distributed.from_main(ckpt)  # every rank resumes from rank 0's checkpoint
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            if adversary is not None:
                adversary.load_state_dict(ckpt["adversary"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            if ema is not None:
                ema.load_state_dict(ckpt["ema"])
            if stopper is not None:
                stopper.load_state_dict(ckpt["early_stopping"])
            tracker.load_state_dict(ckpt["tracker"])
            if "loss" in ckpt:  # a staged loss's decisions (Mars' automatic switch)
                loss_fn.load_state_dict(ckpt["loss"])
                follow_stage_decision()
            shuffle_gen.set_state(ckpt["shuffle_generator"])
            restore_rng_state(ckpt["rng"])
            best_state, history, start_epoch = ckpt["best_state"], ckpt["history"], ckpt["epoch"] + 1
            log.info("resumed from %s at epoch %d", last_path, start_epoch)
            if ckpt.get("finished"):
                return self._result(best_state, tracker, history, budget, steps_per_epoch)

        last_epoch = cfg.epochs - 1 if self.final_epoch is None else self.final_epoch
        for epoch in range(start_epoch, last_epoch + 1):
            started = time.perf_counter()
            if hasattr(train, "start_epoch"):  # training inputs redrawn every epoch (training/batches.RedrawnData)
                train.start_epoch(epoch)
            model.train()
            sums: dict[str, float] = {}
            seen = 0
            for batch in itertools.chain.from_iterable(train.batches(
                cfg.batch_size, shuffle=True, generator=shuffle_gen, drop_last=True, crop=cfg.crop_frames, hflip=cfg.hflip
            ) for _ in range(passes)):
                if ddp is not None:
                    batch, share = distributed.shard_batch(batch)  # this rank's rows of the global batch
                batch = batch.to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
                    output = step_model(batch.inputs, batch.lengths)
                loss = loss_fn(output, batch.target, epoch)
                if adversary is not None:
                    progress = (scheduler.last_epoch + 1) / (cfg.epochs * scheduled_per_epoch)
                    extra, terms = adversary(output.features, batch.speaker, progress)
                    loss = LossOutput(loss.total + extra, {**loss.terms, **terms})
                optimizer.zero_grad(set_to_none=True)
                (loss.total * share if ddp is not None else loss.total).backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(trained, cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                if ema is not None and epoch >= cfg.ema_start_epoch:
                    ema.update_parameters(model)
                n = len(batch.target)
                seen += n
                sums["loss"] = sums.get("loss", 0.0) + loss.total.item() * n
                for k, v in loss.terms.items():
                    sums[k] = sums.get(k, 0.0) + v * n
            if ddp is not None:
                sums, seen = distributed.sum_over_ranks(sums, seen)
            eval_model = ema.module if ema is not None and epoch >= cfg.ema_start_epoch else model
            val_metrics = self.evaluate(eval_model, val) if val is not None else {}
            if hasattr(loss_fn, "end_epoch"):  # a loss that decides from validation data (Mars' automatic switch)
                loss_fn.end_epoch(epoch, val_metrics)
                follow_stage_decision()
            record = {"epoch": epoch, "lr": scheduler.get_last_lr()[0]}
            record.update({f"train/{k}": v / max(seen, 1) for k, v in sums.items()})
            record.update({f"val/{k}": v for k, v in val_metrics.items()})
            if (tracker.update(epoch, val_metrics) if val is not None else tracker.take(epoch)):
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in eval_model.state_dict().items()})
            stop = stopper.step(epoch, val_metrics) if stopper else False
            if stop and eval_model is not model and (epoch - tracker.best_epoch) * steps_per_epoch < ema_horizon(
                    ema_decay, int(ema.n_averaged), cfg.ema_warmup):
                stop = False  # the evaluated EMA still carries weights from before the best epoch: it may yet improve
            record["seconds"] = time.perf_counter() - started
            history.append(record)
            for callback in self.epoch_callbacks:
                callback(epoch, record)
            log.debug("epoch %d %s", epoch, {k: round(v, 4) for k, v in record.items() if isinstance(v, float)})
            finished = stop or epoch == last_epoch
            if last_path is not None and distributed.is_main():
                atomic_torch_save(
                    {
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "adversary": adversary.state_dict() if adversary is not None else None,
                        "scheduler": scheduler.state_dict(), "ema": ema.state_dict() if ema else None,
                        "early_stopping": stopper.state_dict() if stopper else None,
                        "tracker": tracker.state_dict(), "shuffle_generator": shuffle_gen.get_state(),
                        "loss": loss_fn.state_dict(),
                        "rng": rng_state(), "best_state": best_state, "history": history,
                        "epoch": epoch, "finished": finished,
                    },
                    last_path,
                )
            if stop:
                log.info("early stop at epoch %d (best epoch %d)", epoch, tracker.best_epoch)
                break
        return self._result(best_state, tracker, history, budget, steps_per_epoch)

    @staticmethod
    def _result(best_state: dict, tracker: BestTracker, history: list[dict], budget: dict, steps_per_epoch: int) -> FitResult:
        best = history[tracker.best_epoch]
        best_metrics = {k[4:]: v for k, v in best.items() if k.startswith("val/")}
        used = fold_budget(**budget, epochs_run=len(history), best_epoch=tracker.best_epoch)
        return FitResult(best_state, tracker.best_epoch, best_metrics, len(history), history, used, steps_per_epoch)
