"""Fusions and losses over three branches with arbitrary modality names (issue 23, item 2).

Every registered fusion either builds, runs and trains on three branches, or refuses them with a ConfigError
naming the method, how many modalities it takes and the ones given. The reweighting losses are checked against
hand computations of their per-branch weights, each modality with its own gamma where the loss has one.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from emofuse.config.schema import ModelConfig
from emofuse.losses import LOSSES
from emofuse.models import FUSIONS, ModelOutput, create_model
from emofuse.core.registry import ConfigError

DIMS = {"touch": 8, "audio": 16, "text": 12, "physio": 5}
THREE = ("touch", "audio", "text")  # no 'visual', and the first branch is not 'audio'
N_CLASSES = 5


def build(fusion: str, modalities, params: dict | None = None):
    """MLP encoders, except a 1D CNN over frame sequences for touch (so model-level blocks meet a (B, C, T) state)."""
    torch.manual_seed(0)
    encoders = {m: {"name": "mlp", "params": {"hidden": [16, 16], "dropout": 0.0}} for m in modalities}
    sequence = {m: m == "touch" for m in modalities}
    if "touch" in modalities:
        encoders["touch"] = {"name": "cnn1d", "params": {"channels": [16, 16], "kernel_size": 3}}
    config = ModelConfig(encoders=encoders, fusion={"name": fusion, "params": params or {}})
    return create_model(config, {m: DIMS[m] for m in modalities}, sequence, N_CLASSES), sequence


def batch(modalities, sequence, n=4, steps=20):
    g = torch.Generator().manual_seed(1)
    inputs = {m: torch.randn(n, steps, DIMS[m], generator=g) if sequence[m] else torch.randn(n, DIMS[m], generator=g)
              for m in modalities}
    lengths = {m: torch.tensor([steps, 7, 12, 3][:n]) if sequence[m] else None for m in modalities}
    return inputs, lengths


def takes(fusion: str, n: int) -> bool:
    counts = FUSIONS.get(fusion).modality_counts
    return counts is None or n in counts


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_runs_on_three_named_branches_or_says_it_cannot(fusion):
    if not takes(fusion, 3):
        with pytest.raises(ConfigError) as err:
            build(fusion, THREE)
        message = str(err.value)
        assert f"fusion '{fusion}'" in message and "defined for 2 modalities" in message
        assert "got 3 (touch, audio, text)" in message
        return
    model, sequence = build(fusion, THREE)
    inputs, lengths = batch(THREE, sequence)
    out = model(inputs, lengths)
    assert out.probs.shape == (4, N_CLASSES)
    assert torch.allclose(out.probs.sum(1), torch.ones(4), atol=1e-5)
    assert list(out.branch_logits) == list(THREE)
    assert all(z.shape == (4, N_CLASSES) for z in out.branch_logits.values())
    if model.fusion.decision_level:
        assert out.fused_logits is None
        loss = LOSSES.create("mars", {"gamma": {"touch": 1.0, "audio": 2.0, "text": 0.5}, "switch_epoch": 0},
                             modalities=list(THREE))
    else:
        assert out.fused_logits.shape == (4, N_CLASSES)
        loss = LOSSES.create("fused_cross_entropy", {}, modalities=list(THREE))
    target = torch.tensor([0, 1, 2, 4])
    result = loss(out, target, epoch=0)
    assert torch.isfinite(result.total)
    assert set(THREE) <= {key.split("/")[-1] for key in result.terms}
    result.total.backward()
    for m in THREE:
        first = next(model.encoders[m].stages[0].parameters())
        assert first.grad is not None and first.grad.abs().sum() > 0, f"{fusion}: no gradient reaches the {m} encoder"


@pytest.mark.parametrize("fusion", [f for f in FUSIONS.names() if FUSIONS.get(f).modality_counts is not None])
def test_fusions_of_a_fixed_number_run_on_two_branches_named_neither_audio_nor_visual(fusion):
    model, sequence = build(fusion, ("touch", "text"))
    inputs, lengths = batch(("touch", "text"), sequence)
    out = model(inputs, lengths)
    assert out.fused_logits.shape == (4, N_CLASSES) and set(out.branch_logits) == {"touch", "text"}


def test_tfn_takes_two_or_three_modalities_and_names_the_four_it_got():
    modalities = ["touch", "audio", "text", "physio"]
    with pytest.raises(ConfigError, match=r"fusion 'tfn' is defined for 2 or 3 modalities; got 4 \(touch, audio, text, "
                                          r"physio\)\. Fusions for any number: average, concat, mmtm, msaf"):
        build("tfn", modalities)
    # the same check, without building anything, for a config to call before any data is read
    with pytest.raises(ConfigError, match="'tfn'"):
        FUSIONS.get("tfn").check_modalities(modalities)
    FUSIONS.get("tfn").check_modalities(modalities[:3])
    FUSIONS.get("concat").check_modalities(modalities)


def test_cfn_sr_primary_is_the_first_encoder_unless_named():
    assert build("cfn_sr", ("touch", "text"))[0].fusion.primary == "touch"
    named = build("cfn_sr", ("touch", "text"), {"primary": "text"})[0].fusion
    assert (named.primary, named.auxiliary) == ("text", "touch")
    with pytest.raises(ConfigError, match="primary modality 'visual' is not one of the modalities"):
        build("cfn_sr", ("touch", "text"), {"primary": "visual"})


# Three branches, 2 samples, 3 classes; the true-class probabilities p_m[y] are worked out below.
LOGITS = {"audio": torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
          "text": torch.tensor([[0.5, 0.0, 1.0], [0.0, 0.0, 2.0]]),
          "touch": torch.tensor([[0.0, 3.0, 0.0], [1.0, 1.0, 1.0]])}
TARGET = torch.tensor([0, 2])
GAMMA = {"audio": 2.0, "text": 0.5, "touch": 1.0}


def p_true(m: str, i: int) -> float:
    exps = [math.exp(v) for v in LOGITS[m][i].tolist()]
    return exps[int(TARGET[i])] / sum(exps)


def output(logits) -> ModelOutput:
    return ModelOutput(branch_logits=logits, probs=torch.zeros(1))


def weighted_ce(weights: dict[str, list[float]]) -> float:
    """L = sum_m mean_i w_m(i) * (-log p_m[y_i])."""
    return sum(sum(w * -math.log(p_true(m, i)) for i, w in enumerate(weights[m])) / 2 for m in weights)


def test_three_branch_mars_weights_per_modality_gamma_and_stages():
    loss = LOSSES.create("mars", {"gamma": GAMMA, "switch_epoch": 3}, modalities=list(LOGITS))
    # stage 1 (epoch < L): every weight is 1, the loss is the sum of the three cross-entropies
    stage1 = loss.branch_weights(LOGITS, TARGET, epoch=2)
    assert all(torch.equal(w, torch.ones(2)) for w in stage1.values())
    ones = {m: [1.0, 1.0] for m in LOGITS}
    out = loss(output(LOGITS), TARGET, epoch=2)
    assert out.total.item() == pytest.approx(weighted_ce(ones), rel=1e-6) and out.terms["stage"] == 1.0
    # stage 2 (epoch >= L): w_m = exp(-gamma_m (1 - p_m[y])), each branch with its own gamma
    stage2 = loss.branch_weights(LOGITS, TARGET, epoch=3)
    hand = {m: [math.exp(-GAMMA[m] * (1 - p_true(m, i))) for i in range(2)] for m in LOGITS}
    for m in LOGITS:
        assert stage2[m].tolist() == pytest.approx(hand[m], abs=1e-6)
    # touch, sample 0: p = 1 / (2 + e^3) = 0.045279, w = exp(-1.0 * 0.954721) = 0.384919
    assert stage2["touch"][0].item() == pytest.approx(0.384919, abs=1e-6)
    # text, sample 1: p = e^2 / (e^2 + 2) = 0.786986, w = exp(-0.5 * 0.213014) = 0.898969
    assert stage2["text"][1].item() == pytest.approx(0.898969, abs=1e-6)
    out = loss(output(LOGITS), TARGET, epoch=3)
    assert out.total.item() == pytest.approx(weighted_ce(hand), rel=1e-6) and out.terms["stage"] == 2.0
    assert {f"weight/{m}" for m in LOGITS} <= set(out.terms)
    assert out.terms["weight/touch"] == pytest.approx(sum(hand["touch"]) / 2, rel=1e-6)


def test_mars_gamma_must_name_every_modality_and_only_them():
    with pytest.raises(ConfigError, match=r"missing: \['touch'\], not a modality: none"):
        LOSSES.create("mars", {"gamma": {"audio": 1.0, "text": 1.0}}, modalities=list(LOGITS))
    with pytest.raises(ConfigError, match=r"missing: none, not a modality: \['visual'\]"):
        LOSSES.create("mars", {"gamma": {**GAMMA, "visual": 1.0}}, modalities=list(LOGITS))


BETA = 0.4
K = BETA / (3 - 1)  # Liu et al.'s and M3ER's exponent beta / (M - 1) with M = 3 branches
HAND_WEIGHTS = {
    "cross_entropy": lambda m, i: 1.0,
    "mars": lambda m, i: math.exp(-GAMMA[m] * (1 - p_true(m, i))),
    "multiplication": lambda m, i: math.prod(1 - p_true(j, i) for j in LOGITS if j != m) ** K,
    "m3er": lambda m, i: p_true(m, i) ** K,
}
PARAMS = {"cross_entropy": {}, "mars": {"gamma": GAMMA, "switch_epoch": 0}, "multiplication": {"beta": BETA},
          "m3er": {"beta": BETA}}


@pytest.mark.parametrize("name", list(HAND_WEIGHTS))
def test_three_branch_reweighting_losses_match_hand_computed_weights_without_gradient_through_them(name):
    loss = LOSSES.create(name, PARAMS[name], modalities=list(LOGITS))
    hand = {m: [HAND_WEIGHTS[name](m, i) for i in range(2)] for m in LOGITS}
    weights = loss.branch_weights(LOGITS, TARGET, epoch=0)
    for m in LOGITS:
        assert weights[m].tolist() == pytest.approx(hand[m], rel=1e-5)
    logits = {m: z.clone().requires_grad_() for m, z in LOGITS.items()}
    out = loss(output(logits), TARGET, epoch=0)
    assert out.total.item() == pytest.approx(weighted_ce(hand), rel=1e-5)
    # the gradient is that of the cross-entropies under constant weights
    out.total.backward()
    for m in LOGITS:
        ref = LOGITS[m].clone().requires_grad_()
        (torch.tensor(hand[m]) * F.cross_entropy(ref, TARGET, reduction="none")).mean().backward()
        assert torch.allclose(logits[m].grad, ref.grad, atol=1e-6), (name, m)


def test_three_branch_focal_loss_matches_hand_computed_value():
    out = LOSSES.create("focal", {"gamma": 2.0}, modalities=list(LOGITS))(output(LOGITS), TARGET, epoch=0)
    expected = sum(sum(-(1 - p_true(m, i)) ** 2 * math.log(p_true(m, i)) for i in range(2)) / 2 for m in LOGITS)
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    assert set(out.terms) == {f"focal/{m}" for m in LOGITS}


def test_three_branch_fused_cross_entropy_adds_every_probe():
    fused = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    out = LOSSES.create("fused_cross_entropy", {}, modalities=list(LOGITS))(
        ModelOutput(branch_logits=LOGITS, probs=fused.softmax(-1), fused_logits=fused), TARGET, epoch=0)
    expected = F.cross_entropy(fused, TARGET).item() + weighted_ce({m: [1.0, 1.0] for m in LOGITS})
    assert out.total.item() == pytest.approx(expected, rel=1e-6)
    assert set(out.terms) == {"ce/fused", *(f"probe_ce/{m}" for m in LOGITS)}


def test_a_config_names_a_fusion_or_gamma_that_does_not_fit_its_modalities_when_loaded():
    """Checked with the config, before any data is read or model built."""
    from conftest import REPO

    from emofuse.config.loading import load_config

    with pytest.raises(ConfigError, match="missing: \\['visual'\\]"):
        load_config(REPO / "configs" / "ravdess_mars.yaml", ["loss.params.gamma={audio: 1.0}"])
    with pytest.raises(ConfigError, match="fusion 'cbp' is defined for 2 modalities; got 1 \\(audio\\)"):
        load_config(REPO / "configs" / "ravdess_cbp.yaml", ["data.modalities=[audio]", "model.encoders={audio: {name: mlp}}"])
