"""Threads chosen for the work (core/threads.py): one for small networks, one per core for 3D CNNs, --threads and
EMOFUSE_THREADS override; a cv run trains on the count its model is worth whatever torch's default is."""

import pytest
import torch

from emofuse.cli import main
from emofuse.config.loading import config_from_dict
from emofuse.core import threads
from emofuse.core.registry import ConfigError, Part
from emofuse.models.encoders import compute_bound
from emofuse.protocol.cross_validation import run_cross_validation
from emofuse.training.trainer import Trainer

from conftest import feature_manifest_config, make_feature_manifest


@pytest.fixture(autouse=True)
def two_threads(monkeypatch):
    """torch at two threads, as on a 2-core machine, and no EMOFUSE_THREADS from the environment."""
    monkeypatch.delenv(threads.ENV, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_small_work_runs_on_one_thread_and_restores_the_count():
    with threads.thread_budget(parallel=False) as count:
        assert count == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_parallel_work_keeps_a_thread_per_core():
    with threads.thread_budget(parallel=True) as count:
        assert count == 2 and torch.get_num_threads() == 2


def test_the_environment_overrides_the_choice(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    with threads.thread_budget(parallel=False):
        assert torch.get_num_threads() == 3


@pytest.mark.parametrize("value", ["two", "0", "-1"])
def test_a_bad_thread_count_in_the_environment_is_named(monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(ConfigError, match=f"EMOFUSE_THREADS={value!r}"):
        threads.requested()


def test_only_a_3d_cnn_is_worth_several_threads():
    assert not compute_bound({"audio": Part(name="cnn1d"), "visual": Part(name="mlp")})
    assert compute_bound({"audio": Part(name="mlp"), "visual": Part(name="resnext3d")})


def test_cli_threads_reaches_the_environment_for_the_command_only(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr("emofuse.api.list_parts", lambda: seen.append(threads.requested()) or {})
    assert main(["--threads", "1", "registry"]) == 0
    assert seen == [1] and threads.requested() is None  # worker processes inherit it; the caller's environment is kept
    with pytest.raises(SystemExit):
        main(["--threads", "0", "registry"])
    assert "--threads: 0 is not at least 1" in capsys.readouterr().err


def test_cv_trains_small_networks_on_one_thread(tmp_path, monkeypatch):
    """Before: training ran on torch's default (2 here), whose threads spin when another process holds a core."""
    seen = []
    fit = Trainer.fit

    def recording_fit(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", recording_fit)
    manifest = make_feature_manifest(tmp_path / "data")
    config = config_from_dict(feature_manifest_config(manifest, **{"train.epochs": 1, "protocol.n_folds": 2}))
    run_cross_validation(config, manifest, tmp_path / "run", tmp_path / "cache", progress=False)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2

    monkeypatch.setenv(threads.ENV, "2")
    seen.clear()
    run_cross_validation(config, manifest, tmp_path / "run2", tmp_path / "cache", progress=False)
    assert set(seen) == {2}
