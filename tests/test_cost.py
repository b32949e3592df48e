"""`emofuse cost`: one row per registered method, counts checked against independent hand counts."""

import json
import math
import sys

import pytest
import torch
from torch import nn

from conftest import REPO
from emofuse.cli import main
from emofuse.config.schema import ModelConfig
from emofuse.core.registry import Part
from emofuse.inference.cost import PAPER_GFLOPS, Setting, cost_table, count_macs, loss_only_methods, paper_setting
from emofuse.models import FUSIONS, create_model

TINY_CLIPS = Setting(
    "tiny", {"visual": Part(name="resnext3d", params={"blocks": [1, 1, 1, 1], "cardinality": 2, "group_width": 2, "stem": 8}),
             "audio": Part(name="cnn1d", params={"channels": [8, 8]})},
    {"visual": (4, 3, 32, 32), "audio": (30, 6)}, {"visual": True, "audio": True})


def conv_and_linear_macs(model, x, lengths) -> int:
    """Multiply-accumulates of every convolution and linear layer, counted with forward hooks (no ptflops)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        else:
            total += output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv3d))]
    with torch.no_grad():
        model(x, lengths)
    for h in handles:
        h.remove()
    return total


def test_every_registered_method_has_a_row():
    rows = cost_table([TINY_CLIPS], ["cpu"], repeats=2, warmup=1)
    methods = [r["method"] for r in rows]
    assert set(FUSIONS.names()) <= set(methods) and set(loss_only_methods()) <= set(methods)
    assert "mars" in methods and "cross_entropy" not in methods
    average = next(r for r in rows if r["method"] == "average")
    for r in rows:
        assert r["inputs"] == {"visual": [1, 4, 3, 32, 32], "audio": [1, 30, 6]}
        if "error" in r:
            continue
        assert r["params"] > 0 and r["gflops"] == pytest.approx(2 * r["gmacs"]) and r["cpu_ms"] > 0
        if r["kind"] == "loss":
            assert {k: r[k] for k in ("params", "gmacs", "cpu_ms")} == {k: average[k] for k in ("params", "gmacs", "cpu_ms")}
    model = create_model(ModelConfig(encoders=TINY_CLIPS.encoders), TINY_CLIPS.input_dims, TINY_CLIPS.sequence, 8)
    assert average["params"] == sum(p.numel() for p in model.parameters())


def test_a_method_that_cannot_be_built_gets_a_reason():
    rows = cost_table([TINY_CLIPS], ["cpu"], repeats=1, warmup=0, fusions=["average", "no_such_fusion"])
    assert "error" not in rows[0] and "unknown fusion 'no_such_fusion'" in rows[1]["error"]


def test_macs_agree_with_a_hand_count():
    model = create_model(ModelConfig(encoders=TINY_CLIPS.encoders), TINY_CLIPS.input_dims, TINY_CLIPS.sequence, 8).eval()
    x, lengths = TINY_CLIPS.inputs("cpu")
    by_hand = conv_and_linear_macs(model, x, lengths)
    macs = count_macs(model, x, lengths)
    assert by_hand <= macs <= 1.1 * by_hand  # ptflops adds one operation per element of BN, ReLU and pooling


@pytest.mark.slow
def test_paper_backbones_match_the_papers_figure():
    setting = paper_setting(REPO / "configs" / "ravdess_mars_cnn.yaml")
    assert setting.shapes["visual"] == (30, 3, 224, 224)
    model = create_model(ModelConfig(encoders=setting.encoders), setting.input_dims, setting.sequence, 8).eval()
    x, lengths = setting.inputs("cpu")
    gmacs = count_macs(model, x, lengths) / 1e9
    # The paper's Table II reports 56.23 "GFLOPs" for decision fusion: it matches multiply-accumulates, not 2 x MACs.
    assert abs(gmacs - PAPER_GFLOPS) / PAPER_GFLOPS < 0.03


def test_cli_prints_json_rows(capsys):
    assert main(["cost", "--json", "--setting", "ravdess", "--repeats", "2", "--warmup", "1", "--device", "cpu",
                 "--config", str(REPO / "configs" / "ravdess_mars.yaml")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["method"] for r in rows} >= set(FUSIONS.names())
    for r in rows:
        assert {"method", "params", "gflops", "cpu_ms", "inputs"} <= set(r) and "cuda_ms" not in r
        assert r["inputs"] == {"audio": [1, 2304], "visual": [1, 35]}  # Whisper tiny.en: mean + std of 384, 3 layers


def test_cli_refuses_cuda_without_it(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert main(["cost", "--device", "cuda", "--setting", "ravdess"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_without_ptflops_cost_names_the_extra(capsys, monkeypatch):
    """Not a table of ModuleNotFoundError rows and exit 0: one error naming the extra (issue 22)."""
    monkeypatch.setitem(sys.modules, "ptflops", None)
    assert main(["cost", "--setting", "ravdess", "--repeats", "1", "--warmup", "0", "--device", "cpu"]) == 2
    assert "needs the 'deploy' extra (ptflops is not installed): pip install 'emofuse[deploy]'" in capsys.readouterr().err
