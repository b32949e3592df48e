"""Issue 33: run files written whole or not at all, config values that name things checked at load time, runs that
record every part's parameters, no import circle through the config, user-data configs that a deployment can match."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys

import pytest
import torch
import yaml

from emofuse.config import loading
from emofuse.config.loading import config_from_dict, dump_config, load_config, load_run_config
from emofuse.core import atomic
from emofuse.core.atomic import atomic_torch_save
from emofuse.core.registry import ConfigError
from emofuse.losses import LOSSES
from emofuse.tasks.emi.config import EmiConfig
from emofuse.zoo import DEFAULT, model_dir

from conftest import REPO

BASE = {
    "name": "t",
    "features": {"audio": {"name": "mfcc", "params": {"n_mfcc": 13}}},
    "model": {"encoders": {"audio": {"name": "mlp"}, "visual": {"name": "mlp"}}},
}


def edited(**dotted) -> dict:
    tree = copy.deepcopy(BASE)
    for key, value in dotted.items():
        loading.set_dotted(tree, key.replace("__", "."), value)
    return tree


# Item 1: atomic writes ------------------------------------------------------------------------------------------


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("fails half-way through the write")


def test_a_checkpoint_write_that_fails_at_the_rename_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    atomic_torch_save(path, {"w": torch.ones(3)})

    def broken_replace(src, dst):
        raise OSError("disk gone at the rename")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="at the rename"):
        atomic_torch_save(path, {"w": torch.zeros(3)})
    assert torch.equal(torch.load(path)["w"], torch.ones(3))  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temporary file left


def test_a_checkpoint_write_that_fails_mid_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "best.pt"
    atomic_torch_save(path, {"w": torch.ones(3)})
    with pytest.raises(RuntimeError, match="half-way"):
        atomic_torch_save(path, {"w": torch.zeros(1000), "z": Unpicklable()})
    assert torch.equal(torch.load(path)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_a_process_killed_mid_write_leaves_the_old_file(tmp_path):
    """A writer killed (SIGKILL: no cleanup) with half of the new checkpoint written: best.pt is the old one, whole."""
    path = tmp_path / "best.pt"
    atomic_torch_save(path, {"w": torch.ones(3)})
    script = ("import io, os, signal, sys, torch\nfrom emofuse.core.atomic import atomic_write\n"
              "buffer = io.BytesIO(); torch.save({'w': torch.zeros(100_000)}, buffer); new = buffer.getvalue()\n"
              "def write(f):\n    f.write(new[:len(new) // 2]); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
              "atomic_write(sys.argv[1], write)\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == -9
    assert torch.equal(torch.load(path)["w"], torch.ones(3))
    cut = [p for p in tmp_path.iterdir() if p.name != "best.pt"]
    assert len(cut) == 1 and cut[0].name.startswith(".best.pt.") and cut[0].stat().st_size > 0  # the torn write


WRITES = re.compile(r"torch\.save\(|\.savefig\((?!buffer|f\b)|np\.savez?(_compressed)?\((?!f\b)|open\((?!buffer)[^)]*[\"']w")


def test_run_files_are_written_through_core_atomic():
    """Every torch.save / np.save / savefig / open(..., "w") of src/ goes through core/atomic.py, but for the
    fixture writers (not run directories) and training/trainer.py (its own atomic checkpoint, being restructured)."""
    exempt = {"core/atomic.py", "training/trainer.py", "tasks/emi/fixture.py", "data/touch_fixture.py"}
    src = REPO / "src" / "emofuse"
    offenders = [f"{p.relative_to(src)}:{i}" for p in src.rglob("*.py") if str(p.relative_to(src)) not in exempt
                 for i, line in enumerate(p.read_text().splitlines(), 1) if WRITES.search(line)]
    assert offenders == []


# Item 2: names checked when the config loads -------------------------------------------------------------------


@pytest.mark.parametrize("tree, message", [
    (edited(train__early_stopping__monitor="acuracy"),
     "train.early_stopping.monitor: 'acuracy' is not a validation metric (did you mean 'accuracy'?)"),
    (edited(train__early_stopping__monitor="accuracy/audoi"), "(did you mean 'accuracy/audio'?)"),
    (edited(train__device="cdua"), "'train.device': Value error, 'cdua' is not a device (did you mean 'cuda'?)"),
    (edited(train__amp="of"), "'train.amp': Input should be 'auto' or 'off' (got 'of') (did you mean 'off'?)"),
    (edited(features__speaker_norm="inductiv"), "(got 'inductiv') (did you mean 'inductive'?)"),
    ({**BASE, "model": {"encoders": {"audoi": {"name": "mlp"}, "visual": {"name": "mlp"}}}},
     "model.encoders has no encoder for modalities ['audio']; model.encoders.audoi (did you mean 'audio'?)"),
    (edited(data__modality_noise={"modality": "audoi", "kind": "gaussian", "level": 10}),
     "data.modality_noise.modality: 'audoi' is not one of data.modalities ['audio', 'visual'] (did you mean 'audio'?)"),
])
def test_a_misspelt_name_fails_at_load_with_the_closest_name(tree, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(tree)
    assert message in str(err.value)


def test_devices_and_per_branch_monitors_that_exist_load():
    config = config_from_dict(edited(train__device="cuda:1", train__early_stopping__monitor="accuracy/visual"))
    assert config.train.device == "cuda:1"


def test_the_classification_monitors_are_the_metrics_the_evaluator_gives():
    import numpy as np

    from emofuse.config.schema import classification_monitors
    from emofuse.metrics.classification import Predictions, classification_metrics

    probs = np.full((4, 2), 0.5, np.float32)
    pred = Predictions(probs=probs, target=np.array([0, 1, 0, 1]), branch_probs={"audio": probs, "visual": probs})
    assert sorted(classification_metrics(pred, 2)) == sorted(classification_monitors(["audio", "visual"]))


@pytest.mark.parametrize("edit, message", [
    ({"train": {"early_stopping": {"monitor": "pearson_maen"}}}, "(did you mean 'pearson_mean'?)"),
    ({"model": {"vad_modality": "audoi"}}, "(did you mean 'audio'?)"),
])
def test_emi_names_fail_at_load_with_the_closest_name(edit, message):
    tree = loading.deep_merge({"name": "e", "data": {"modalities": ["audio", "text"], "targets": ["joy"]}}, edit)
    with pytest.raises(ConfigError) as err:
        config_from_dict(tree, schema=EmiConfig)
    assert message in str(err.value)


# Item 3: runs record every part's parameters -------------------------------------------------------------------


def test_a_run_records_every_parameter_of_its_parts():
    recorded = yaml.safe_load(dump_config(config_from_dict(edited(loss={"name": "mars"}))))
    assert recorded["features"]["audio"]["params"]["n_mfcc"] == 13  # as given
    assert recorded["features"]["audio"]["params"]["sample_rate"] == 16000  # a default, recorded
    assert recorded["model"]["encoders"]["audio"]["params"]["norm"] == "batch"
    assert recorded["loss"]["params"] == {"gamma": 1.0, "switch_epoch": 10, "switch_patience": None, "normalize": False}


def test_every_shipped_config_records_and_reloads_unchanged():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        if path.name.startswith("emi"):
            continue
        recorded = dump_config(load_config(path))
        assert dump_config(config_from_dict(yaml.safe_load(recorded), str(path))) == recorded, path.name


def test_the_bundled_model_pins_every_value():
    shipped = model_dir(DEFAULT) / "config.yaml"
    assert shipped.read_text() == dump_config(load_run_config(model_dir(DEFAULT)))


def test_an_old_run_lacking_a_later_default_keeps_the_value_it_was_trained_with(tmp_path, monkeypatch):
    tree = yaml.safe_load(dump_config(config_from_dict(edited())))
    del tree["protocol"]["refit"]  # recorded before the key existed
    del tree["features"]["audio"]["params"]["n_mels"]  # a part's default not recorded then
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tree))
    monkeypatch.setattr(loading, "OLD_DEFAULTS", (
        loading.OldDefault("protocol.refit", True),  # as if the default had been true, then changed
        loading.OldDefault("features.audio.params.n_mels", 40, part="mfcc"),
        loading.OldDefault("model.fusion.params.heads", 2, part="cbp"),  # another part: not applied
    ))
    run = load_run_config(tmp_path)
    assert run.protocol.refit is True and run.features.audio.params["n_mels"] == 40
    assert "heads" not in run.model.fusion.params
    assert load_config(tmp_path / "config.yaml").protocol.refit is False  # a config, not a run: today's default
    tree["protocol"]["refit"] = False  # a run that recorded the key keeps it
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tree))
    assert load_run_config(tmp_path).protocol.refit is False


# Item 7: no import circle; validation builds nothing ----------------------------------------------------------


def test_import_contracts_hold_with_type_checking_imports_counted():
    assert "exclude_type_checking_imports = false" in (REPO / "pyproject.toml").read_text()
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(no_cache=True))"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]


def test_validating_a_config_builds_no_module(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a torch module was built while validating a config")

    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)
    config = config_from_dict(edited(loss={"name": "mars", "params": {"gamma": {"audio": 1.0, "visual": 2.0}}}))
    assert config.loss.name == "mars"
    with pytest.raises(ConfigError, match="missing: \\['visual'\\]"):  # the per-modality check, without the loss
        config_from_dict(edited(loss={"name": "mars", "params": {"gamma": {"audio": 1.0}}}))


def test_the_loss_still_checks_its_modalities_when_built():
    with pytest.raises(ConfigError, match="missing: \\['visual'\\]"):
        LOSSES.create("mars", {"gamma": {"audio": 1.0}}, modalities=["audio", "visual"])


# Item 9: user-data configs are deployable ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["manifest_audio", "manifest_av", "manifest_features", "manifest_touch"])
def test_user_data_configs_normalise_speakers_as_a_deployment_can(name):
    config = load_config(REPO / "configs" / f"{name}.yaml")
    assert config.features.speaker_norm in ("inductive", "none")
    assert load_config(REPO / "configs" / f"{name}.yaml",
                       ["features.speaker_norm=transductive"]).features.speaker_norm == "transductive"
