"""`emofuse export`: tiny cv runs exported to ONNX / TorchScript and checked against PyTorch independently."""

import json
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import REPO, make_ravdess_fixture
from emofuse.cli import main
from emofuse.inference.export import load_run_model

FAST = ["--set", "train.epochs=2", "--set", "protocol.n_folds=3", "--set", "features.workers=1", "--folds", "1", "--no-progress",
        "--set", "features.adapt_clips=3"]  # the fixture has 8 clips per speaker, fewer than the shipped k = 10 + 1


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    return make_ravdess_fixture(root / "ravdess", actors=range(1, 7), emotions=range(1, 5)), root / "cache"


def cv_run(data, tmp_path, config: str, *sets: str) -> str:
    data_dir, cache = data
    out = tmp_path / "run"
    assert main(["cv", str(REPO / "configs" / config), "--data", str(data_dir), "--cache", str(cache), "--out", str(out), *FAST,
                 *[a for s in sets for a in ("--set", s)]]) == 0
    return out


def random_inputs(wrapper, dims, batch, frames, seed):
    g = torch.Generator().manual_seed(seed)
    feed = {}
    for m in wrapper.modalities:
        if wrapper.sequence[m]:
            feed[m] = torch.randn(batch, frames, dims[m], generator=g)
            feed[f"{m}_lengths"] = torch.cat([torch.tensor([frames]), torch.randint(1, frames + 1, (batch - 1,), generator=g)])
        else:
            feed[m] = torch.randn(batch, dims[m], generator=g)
    return feed


def check_onnx_matches_pytorch(run, path, sequence_modality=None):
    wrapper, _, dims = load_run_model(run, 1)
    session = ort.InferenceSession(str(path))
    names = [i.name for i in session.get_inputs()]
    assert names == wrapper.input_names() and [o.name for o in session.get_outputs()] == wrapper.output_names()
    for batch, frames, seed in [(4, 71, 10), (1, 23, 11)]:
        feed = random_inputs(wrapper, dims, batch, frames, seed)
        got = session.run(None, {k: v.numpy() for k, v in feed.items()})
        with torch.no_grad():
            expected = wrapper(*feed.values())
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e.numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(got[0].sum(1), 1.0, atol=1e-5)
    if sequence_modality:  # variable length: a clip's output does not depend on the padding of its batch
        feed = random_inputs(wrapper, dims, 2, 60, 12)
        short = {k: (v[1:2, : int(feed[f"{sequence_modality}_lengths"][1])] if k == sequence_modality else v[1:2]) for k, v in feed.items()}
        alone = session.run(None, {k: v.numpy() for k, v in short.items()})[0]
        in_batch = session.run(None, {k: v.numpy() for k, v in feed.items()})[0][1:2]
        np.testing.assert_allclose(alone, in_batch, atol=1e-5)


@pytest.mark.slow
def test_mlp_run_exports_to_onnx(data, tmp_path, capsys):
    run = cv_run(data, tmp_path, "ravdess_ce_egemaps.yaml", "protocol.calibrate=true")
    capsys.readouterr()
    assert main(["export", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "exported as onnx" in printed and "check: onnxruntime vs PyTorch" in printed and ": OK" in printed
    path = run / "export" / "fold_1.onnx"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["format"] == "onnx" and meta["max_abs_diff"] <= 1e-5 and meta["fallback_reason"] is None
    assert meta["inputs"] == ["audio", "visual"] and meta["outputs"] == ["probs", "probs_audio", "probs_visual"]
    stored = json.loads((run / "folds" / "fold_1" / "calibration.json").read_text())  # what predict applies after
    assert {k: meta["calibration"][k] for k in stored} == stored
    check_onnx_matches_pytorch(run, path)


@pytest.mark.slow
def test_cnn1d_sequence_run_exports_with_dynamic_lengths(data, tmp_path):
    run = cv_run(data, tmp_path, "ravdess_ce_cnn.yaml")
    out = tmp_path / "model.onnx"
    assert main(["export", str(run), "--fold", "1", "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["inputs"] == ["audio", "audio_lengths", "visual"]
    check_onnx_matches_pytorch(run, out, sequence_modality="audio")


@pytest.mark.slow
def test_model_fusion_run_exports(data, tmp_path):
    run = cv_run(data, tmp_path, "ravdess_mmtm.yaml")
    assert main(["export", str(run)]) == 0
    check_onnx_matches_pytorch(run, run / "export" / "fold_1.onnx")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.load is deprecated in torch 2.13, still works
def test_torchscript_format_round_trips(data, tmp_path, capsys):
    run = cv_run(data, tmp_path, "ravdess_ce_cnn.yaml")
    assert main(["export", str(run), "--format", "torchscript"]) == 0
    wrapper, _, dims = load_run_model(run, 1)
    loaded = torch.jit.load(str(run / "export" / "fold_1.pt"))
    feed = random_inputs(wrapper, dims, 3, 40, 5)
    with torch.no_grad():
        for g, e in zip(loaded(*feed.values()), wrapper(*feed.values())):
            torch.testing.assert_close(g, e, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_falls_back_to_torchscript_where_onnx_cannot_express_the_model(data, tmp_path, capsys):
    # compact bilinear pooling's FFTs: the ONNX graph does not load in onnxruntime (checked, not assumed)
    run = cv_run(data, tmp_path, "ravdess_cbp.yaml")
    capsys.readouterr()
    assert main(["export", str(run)]) == 0
    printed = capsys.readouterr().out
    meta = json.loads((run / "export" / "fold_1.json").read_text())
    if meta["format"] == "onnx":  # a future exporter / onnxruntime that handles it: then the ONNX check must hold
        check_onnx_matches_pytorch(run, run / "export" / "fold_1.onnx")
        return
    assert "instead of ONNX: onnx of fusion cbp" in printed and meta["fallback_reason"].startswith("onnx of fusion cbp")
    assert meta["max_abs_diff"] <= 1e-5 and (run / "export" / "fold_1.pt").is_file()
    assert not list((run / "export").glob("*.onnx")) and not list((run / "export").glob(".export*"))


def test_bad_run_directories_are_named(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nothing")]) == 2
    assert "no config.yaml" in capsys.readouterr().err
    run = tmp_path / "run"
    (run / "folds" / "fold_1").mkdir(parents=True)
    (run / "config.yaml").write_text((REPO / "configs" / "ravdess_ce_egemaps.yaml").read_text())
    assert main(["export", str(run)]) == 2
    assert "data_fingerprint.json: cannot read the run's data record" in capsys.readouterr().err
    (run / "folds" / "fold_1" / "best.pt").write_bytes(b"not a checkpoint")
    (run / "data_fingerprint.json").write_text(json.dumps({"sha256": "x", "feature_dims": {"audio": 88, "visual": 35}}))
    # an interrupted fold (weights, no result.json) is unfinished for export as for predict (issue 22)
    assert main(["export", str(run)]) == 2
    assert "no finished fold" in capsys.readouterr().err
    assert main(["predict", str(run), str(run / "config.yaml")]) == 2
    assert "no finished fold" in capsys.readouterr().err
    (run / "folds" / "fold_1" / "result.json").write_text("{}")
    assert main(["export", str(run), "--fold", "3"]) == 2
    assert "fold 3 is not a finished fold of this run" in capsys.readouterr().err
    assert main(["export", str(run)]) == 2  # export loads a run as predict does: the same refusal
    assert "fold_1/standardizer.json does not exist" in capsys.readouterr().err


def test_onnx_without_the_deploy_extra_names_it(data, tmp_path, capsys, monkeypatch):
    """No quiet fall-back to TorchScript when onnxruntime is missing: the error names the extra (issue 22)."""
    run = cv_run(data, tmp_path, "ravdess_ce_egemaps.yaml")
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    assert main(["export", str(run)]) == 2
    err = capsys.readouterr().err
    assert "needs the 'deploy' extra (onnxruntime is not installed): pip install 'emofuse[deploy]'" in err
    assert not (run / "export").exists() or not list((run / "export").iterdir())
    assert main(["export", str(run), "--format", "torchscript"]) == 0
