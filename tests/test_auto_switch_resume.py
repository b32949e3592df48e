"""Mars' automatic switch inside the trainer: decided from the validation loss only, and kept across a resume."""

import pytest
import torch

from emofuse.config.schema import ModelConfig, TrainConfig
from emofuse.losses import LOSSES
from emofuse.models import create_model
from emofuse.training.batches import TensorData
from emofuse.training.trainer import Trainer

NLL = [2.0, 1.8, 1.7, 1.75, 1.72, 1.71, 1.69, 1.68]  # stops improving after epoch 2; stage 2 from epoch 6


class ScriptedValidation:
    """Validation metrics from a script; records which data it was given."""

    def __init__(self):
        self.calls = 0
        self.seen = []

    def __call__(self, model, data):
        self.seen.append(id(data))
        nll = NLL[self.calls]
        self.calls += 1
        return {"accuracy": 0.1 * self.calls, "nll": nll}


class Interrupt(Exception):
    pass


def setup(tmp_path, name, evaluate, callbacks=()):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    data = TensorData({"audio": torch.randn(40, 6, generator=gen).numpy(), "visual": torch.randn(40, 4, generator=gen).numpy()},
                      torch.randint(0, 3, (40,), generator=gen).numpy())
    model = create_model(ModelConfig.model_validate({"encoders": {"audio": {"name": "mlp", "params": {"hidden": [8]}},
                                                                  "visual": {"name": "mlp", "params": {"hidden": [8]}}}}),
                         {"audio": 6, "visual": 4}, {"audio": False, "visual": False}, 3)
    loss = LOSSES.create("mars", {"switch_epoch": "auto", "switch_patience": 3}, modalities=["audio", "visual"])
    config = TrainConfig(epochs=8, batch_size=8, early_stopping=None)
    (tmp_path / name).mkdir(exist_ok=True)
    return Trainer(config, evaluate, tmp_path / name, seed=0, epoch_callbacks=list(callbacks)), model, loss, data


def test_auto_switch_is_decided_on_validation_and_restored_on_resume(tmp_path):
    evaluate = ScriptedValidation()
    trainer, model, loss, data = setup(tmp_path, "whole", evaluate)
    val = TensorData({"audio": torch.zeros(5, 6).numpy(), "visual": torch.zeros(5, 4).numpy()}, torch.zeros(5, dtype=torch.long).numpy())
    whole = trainer.fit(model, loss, data, val)
    assert loss.stage_start_epoch == 6 and set(evaluate.seen) == {id(val)}
    assert [r["train/stage"] for r in whole.history] == [1.0] * 6 + [2.0] * 2
    assert all(r["train/weight/audio"] == 1.0 for r in whole.history[:6]) and whole.history[6]["train/weight/audio"] < 1

    def stop_at(epoch, record):
        if epoch == 6:  # after the switch fired at the end of epoch 5, before stage 2 trained
            raise Interrupt

    evaluate = ScriptedValidation()
    trainer, model, loss, data = setup(tmp_path, "cut", evaluate, [stop_at])
    with pytest.raises(Interrupt):
        trainer.fit(model, loss, data, val)
    evaluate.calls = 6  # the resumed fit evaluates epochs 6 and 7
    trainer, model, fresh_loss, data = setup(tmp_path, "cut", evaluate)
    resumed = trainer.fit(model, fresh_loss, data, val)
    assert fresh_loss.stage_start_epoch == 6
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(resumed.history) == strip(whole.history)


def test_early_stopping_waits_for_the_automatic_switch_and_a_patience_window(tmp_path):
    """Validation accuracy never improves after epoch 0, so patience 1 alone would stop at epoch 1; the switch is
    pending until the end of epoch 5 (stage 2 from 6), and stage 2 gets its patience window: stop at epoch 6."""

    class FlatAccuracy(ScriptedValidation):
        def __call__(self, model, data):
            metrics = super().__call__(model, data)
            return {**metrics, "accuracy": 0.5}

    trainer, model, loss, data = setup(tmp_path, "es", FlatAccuracy())
    trainer.config = TrainConfig(epochs=8, batch_size=8, early_stopping={"patience": 1, "min_epochs": 0})
    val = TensorData({"audio": torch.zeros(5, 6).numpy(), "visual": torch.zeros(5, 4).numpy()}, torch.zeros(5, dtype=torch.long).numpy())
    fit = trainer.fit(model, loss, data, val)
    assert loss.stage_start_epoch == 6 and fit.epochs_run == 7
    assert fit.budget["stage_start_epoch"] == 6 and fit.budget["min_epochs"] == 7 and fit.budget["stop_reason"] == "patience"
    with pytest.raises(Exception, match="select_from_last_stage"):
        trainer, model, loss, data = setup(tmp_path, "sel", ScriptedValidation())
        trainer.config = TrainConfig(epochs=8, batch_size=8, early_stopping=None, select_from_last_stage=True)
        trainer.fit(model, loss, data, val)
