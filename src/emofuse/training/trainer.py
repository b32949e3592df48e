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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import nn

from emofuse.config.schema import Passes, TrainConfig
from emofuse.core.atomic import atomic_torch_save
from emofuse.losses.base import LossOutput, restrict_classes
from emofuse.core.registry import ConfigError
from emofuse.training import distributed
from emofuse.training.batches import TensorData
from emofuse.training.budget import fold_budget, minimum_epochs
from emofuse.training.callbacks import BestTracker, EarlyStopping
from emofuse.training.ema import ema_horizon, ema_model
from emofuse.training.optim import adamw
from emofuse.training.seeding import restore_rng_state, rng_state
from emofuse.training.timescales import resolve_ema_decay, resolve_weight_decay

log = logging.getLogger(__name__)

Evaluator = Callable[[nn.Module, TensorData], dict[str, float]]


class EpochCallback(Protocol):
    """Called after every epoch with its number and record (losses, validation metrics, seconds)."""

    def __call__(self, epoch: int, record: dict) -> None: ...


@runtime_checkable
class SelectingEvaluator(Protocol):
    """An evaluator that says which of its metrics selects the best epoch without train.early_stopping."""

    selection_metric: tuple[str, str]  # (metric, "max" | "min")

    def __call__(self, model: nn.Module, data: TensorData) -> dict[str, float]: ...


@runtime_checkable
class StagedLoss(Protocol):
    """A loss in stages (losses/base.py's Loss): where its last stage starts (None until it decides from validation
    data), told the validation metrics after every epoch. Other losses have one stage from epoch 0."""

    @property
    def stage_start_epoch(self) -> int | None: ...

    def end_epoch(self, epoch: int, val_metrics: dict[str, float]) -> None: ...


@runtime_checkable
class RedrawnEachEpoch(Protocol):
    """Training rows whose inputs are drawn anew at the start of every epoch (training/batches.RedrawnData)."""

    def start_epoch(self, epoch: int) -> None: ...


@dataclass
class FitResult:
    best_state: dict  # weights of the selected epoch (EMA weights when EMA is on)
    best_epoch: int
    best_metrics: dict[str, float]
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    budget: dict = field(default_factory=dict)  # training/budget.py: schedule length, minimum epochs, why it stopped
    steps_per_epoch: int = 0  # optimiser steps per epoch, passes over the training rows included


@dataclass
class _Run:
    """What the steps of one fit share, and what its checkpoint saves."""

    model: nn.Module
    loss_fn: nn.Module
    adversary: nn.Module | None
    ddp: Any  # the DistributedDataParallel wrapper under torchrun, else None
    trained: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: Any  # torch.optim.swa_utils.AveragedModel, or None
    ema_decay: float | None
    stopper: EarlyStopping | None
    tracker: BestTracker
    shuffle_gen: torch.Generator
    passes: int  # passes over the training rows per epoch
    steps_per_epoch: int
    scheduled_per_epoch: int
    budget: dict
    best_state: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
        epoch_callbacks: list[EpochCallback] | None = None,
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
        run = self._prepare(model, loss_fn, train, val)
        start_epoch = self._resume(run)
        if start_epoch is None:  # the checkpoint of a finished fit
            return self._result(run)
        last_epoch = self.config.epochs - 1 if self.final_epoch is None else self.final_epoch
        for epoch in range(start_epoch, last_epoch + 1):
            started = time.perf_counter()
            record = self._train_epoch(run, epoch, train)
            stop = self._evaluate_epoch(run, epoch, val, record)
            record["seconds"] = time.perf_counter() - started
            run.history.append(record)
            for callback in self.epoch_callbacks:
                callback(epoch, record)
            log.debug("epoch %d %s", epoch, {k: round(v, 4) for k, v in record.items() if isinstance(v, float)})
            self._checkpoint(run, epoch, finished=stop or epoch == last_epoch)
            if stop:
                log.info("early stop at epoch %d (best epoch %d)", epoch, run.tracker.best_epoch)
                break
        return self._result(run)

    def _prepare(self, model: nn.Module, loss_fn: nn.Module, train: TensorData, val: TensorData | None) -> _Run:
        """The optimiser, schedule, EMA, early stopping and selection of a fit, on the device."""
        cfg = self.config
        model.to(self.device)
        loss_fn.to(self.device)
        ddp = distributed.wrap(model)  # under torchrun only (see training/distributed.py); None in one process
        if ddp is not None and train.presence:  # a branch sitting a batch out on one rank leaves DDP waiting for it
            raise ConfigError(f"a corpus without a modality ({', '.join(train.presence)} absent on some rows) is not "
                              "supported under torchrun; train in one process")
        adversary = self.adversary
        if adversary is not None:
            if ddp is not None:
                raise ConfigError("train.speaker_adversary is not supported under torchrun (its heads are not synchronised)")
            adversary.to(self.device)
        trained = [*model.parameters(), *(adversary.parameters() if adversary is not None else [])]
        steps_per_pass = len(train) // cfg.batch_size if len(train) > cfg.batch_size else 1  # whole batches (drop_last)
        passes = math.ceil(cfg.min_epoch_steps / steps_per_pass) if cfg.min_epoch_steps else 1
        # The schedule counts the partial batch that drop_last drops, as it always has: existing configs train as they did.
        scheduled_per_epoch = passes * math.ceil(len(train) / cfg.batch_size)
        weight_decay = resolve_weight_decay(cfg.weight_decay, cfg.lr, steps_per_pass)
        ema_decay = resolve_ema_decay(cfg.ema_decay, steps_per_pass)
        in_passes = isinstance(cfg.weight_decay, Passes) or isinstance(cfg.ema_decay, Passes)  # then worth a line
        log.log(logging.INFO if in_passes else logging.DEBUG,
                "%d optimiser steps per pass over the training rows; weight decay %.4g, EMA decay %s",
                steps_per_pass, weight_decay, "off" if ema_decay is None else f"{ema_decay:.5f}")
        optimizer = adamw(trained, cfg.lr, weight_decay, self.device)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, cosine_with_warmup(cfg.epochs * scheduled_per_epoch, cfg.warmup_epochs * scheduled_per_epoch)
        )
        ema = ema_model(model, ema_decay, cfg.ema_warmup) if ema_decay else None
        es_cfg = cfg.early_stopping
        if es_cfg:
            monitor, mode = es_cfg.monitor, es_cfg.mode
        else:
            monitor, mode = self.evaluate.selection_metric if isinstance(self.evaluate, SelectingEvaluator) else ("accuracy", "max")
        stage_start = loss_fn.stage_start_epoch if isinstance(loss_fn, StagedLoss) else 0  # else one stage
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
        return _Run(
            model=model, loss_fn=loss_fn, adversary=adversary, ddp=ddp, trained=trained, optimizer=optimizer,
            scheduler=scheduler, ema=ema, ema_decay=ema_decay,
            stopper=EarlyStopping(monitor, mode, es_cfg.patience, min_epochs) if es_cfg and val is not None else None,
            tracker=BestTracker(monitor, mode, first_epoch=selection_from),
            shuffle_gen=torch.Generator().manual_seed(self.seed), passes=passes,
            steps_per_epoch=passes * steps_per_pass, scheduled_per_epoch=scheduled_per_epoch,
            budget={"schedule_epochs": cfg.epochs, "min_epochs": min_epochs, "stage_start": stage_start,
                    "selection_from_epoch": selection_from},
        )

    def _last_path(self) -> Path | None:
        return self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None

    def _resume(self, run: _Run) -> int | None:
        """Restore the last checkpoint, if any: the epoch to start from (0 without one), None if the fit had finished."""
        last_path = self._last_path()
        ckpt = None
        if last_path is not None and distributed.is_main() and last_path.is_file():
            ckpt = torch.load(last_path, map_location=self.device, weights_only=False)
        if run.ddp is not None:
            ckpt = distributed.from_main(ckpt)  # every rank resumes from rank 0's checkpoint
        if ckpt is None:
            return 0
        run.model.load_state_dict(ckpt["model"])
        if run.adversary is not None:
            run.adversary.load_state_dict(ckpt["adversary"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
        if run.ema is not None:
            run.ema.load_state_dict(ckpt["ema"])
        if run.stopper is not None:
            run.stopper.load_state_dict(ckpt["early_stopping"])
        run.tracker.load_state_dict(ckpt["tracker"])
        if "loss" in ckpt:  # a staged loss's decisions (Mars' automatic switch)
            run.loss_fn.load_state_dict(ckpt["loss"])
            self._follow_stage_decision(run)
        run.shuffle_gen.set_state(ckpt["shuffle_generator"])
        restore_rng_state(ckpt["rng"])
        run.best_state, run.history = ckpt["best_state"], ckpt["history"]
        log.info("resumed from %s at epoch %d", last_path, ckpt["epoch"] + 1)
        return None if ckpt.get("finished") else ckpt["epoch"] + 1

    def _train_epoch(self, run: _Run, epoch: int, train: TensorData) -> dict:
        """One epoch of optimiser steps (``passes`` over the training rows): the epoch's record, mean training losses."""
        cfg = self.config
        if isinstance(train, RedrawnEachEpoch):  # training inputs redrawn every epoch (training/batches.RedrawnData)
            train.start_epoch(epoch)
        run.model.train()
        step_model = run.ddp if run.ddp is not None else run.model
        sums: dict[str, float] = {}
        seen = 0
        for batch in itertools.chain.from_iterable(train.batches(
            cfg.batch_size, shuffle=True, generator=run.shuffle_gen, drop_last=True, crop=cfg.crop_frames, hflip=cfg.hflip
        ) for _ in range(run.passes)):
            if run.ddp is not None:
                batch, share = distributed.shard_batch(batch)  # this rank's rows of the global batch
            batch = batch.to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
                output = step_model(batch.inputs, batch.lengths, **batch.model_kwargs)
            loss = run.loss_fn(restrict_classes(output, batch.class_mask), batch.target, epoch)
            if run.adversary is not None:
                progress = (run.scheduler.last_epoch + 1) / (cfg.epochs * run.scheduled_per_epoch)
                extra, terms = run.adversary(output.features, batch.speaker, progress, output.presence)
                loss = LossOutput(loss.total + extra, {**loss.terms, **terms})
            if not loss.total.requires_grad:  # every branch sat the batch out (too few rows of its modality)
                continue
            run.optimizer.zero_grad(set_to_none=True)
            (loss.total * share if run.ddp is not None else loss.total).backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(run.trained, cfg.grad_clip)
            run.optimizer.step()
            run.scheduler.step()
            if run.ema is not None and epoch >= cfg.ema_start_epoch:
                run.ema.update_parameters(run.model)
            n = len(batch.target)
            seen += n
            sums["loss"] = sums.get("loss", 0.0) + loss.total.item() * n
            for k, v in loss.terms.items():
                sums[k] = sums.get(k, 0.0) + v * n
        if run.ddp is not None:
            sums, seen = distributed.sum_over_ranks(sums, seen)
        record = {"epoch": epoch, "lr": run.scheduler.get_last_lr()[0]}
        record.update({f"train/{k}": v / max(seen, 1) for k, v in sums.items()})
        return record

    def _evaluate_epoch(self, run: _Run, epoch: int, val: TensorData | None, record: dict) -> bool:
        """Score the epoch's weights (the EMA's once it runs) on ``val`` into ``record``, keep them if selected, and
        say whether to stop early."""
        cfg = self.config
        eval_model = run.ema.module if run.ema is not None and epoch >= cfg.ema_start_epoch else run.model
        val_metrics = self.evaluate(eval_model, val) if val is not None else {}
        if isinstance(run.loss_fn, StagedLoss):  # a loss may decide from validation data (Mars' automatic switch)
            run.loss_fn.end_epoch(epoch, val_metrics)
            self._follow_stage_decision(run)
        record.update({f"val/{k}": v for k, v in val_metrics.items()})
        if (run.tracker.update(epoch, val_metrics) if val is not None else run.tracker.take(epoch)):
            run.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in eval_model.state_dict().items()})
        stop = run.stopper.step(epoch, val_metrics) if run.stopper else False
        if stop and eval_model is not run.model and (epoch - run.tracker.best_epoch) * run.steps_per_epoch < ema_horizon(
                run.ema_decay, int(run.ema.n_averaged), cfg.ema_warmup):
            stop = False  # the evaluated EMA still carries weights from before the best epoch: it may yet improve
        return stop

    def _follow_stage_decision(self, run: _Run) -> None:
        """A stage start the loss decides during training: early stopping waits for it plus a patience window."""
        decided = run.loss_fn.stage_start_epoch if isinstance(run.loss_fn, StagedLoss) else 0
        if decided != run.budget["stage_start"]:
            run.budget["stage_start"] = decided
            run.budget["min_epochs"] = minimum_epochs(self.config.early_stopping, self.config.epochs, decided)
            if run.stopper is not None:
                run.stopper.min_epochs = run.budget["min_epochs"]

    def _checkpoint(self, run: _Run, epoch: int, finished: bool) -> None:
        """Everything an interrupted fit resumes from exactly, written whole (rank 0 only)."""
        last_path = self._last_path()
        if last_path is None or not distributed.is_main():
            return
        atomic_torch_save(last_path, {
            "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "adversary": run.adversary.state_dict() if run.adversary is not None else None,
            "scheduler": run.scheduler.state_dict(), "ema": run.ema.state_dict() if run.ema else None,
            "early_stopping": run.stopper.state_dict() if run.stopper else None,
            "tracker": run.tracker.state_dict(), "shuffle_generator": run.shuffle_gen.get_state(),
            "loss": run.loss_fn.state_dict(),
            "rng": rng_state(), "best_state": run.best_state, "history": run.history,
            "epoch": epoch, "finished": finished,
        })

    @staticmethod
    def _result(run: _Run) -> FitResult:
        best = run.history[run.tracker.best_epoch]
        best_metrics = {k[4:]: v for k, v in best.items() if k.startswith("val/")}
        used = fold_budget(**run.budget, epochs_run=len(run.history), best_epoch=run.tracker.best_epoch)
        return FitResult(run.best_state, run.tracker.best_epoch, best_metrics, len(run.history), run.history, used,
                         run.steps_per_epoch)
