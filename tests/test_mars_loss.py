import math

import pytest
import torch
import torch.nn.functional as F

from emofuse.losses import LOSSES
from emofuse.models import ModelOutput
from emofuse.core.registry import ConfigError


def output(**logits):
    return ModelOutput(branch_logits=logits, probs=torch.zeros(1))


LOGITS_A = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
LOGITS_V = torch.tensor([[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
TARGET = torch.tensor([0, 1])


def hand_weight(logits_row, y, gamma):
    exps = [math.exp(v) for v in logits_row]
    p_true = exps[y] / sum(exps)
    return math.exp(-gamma * (1 - p_true))


def test_mars_weights_match_hand_computed_values():
    loss = LOSSES.create("mars", {"gamma": {"audio": 2.0, "visual": 0.5}, "switch_epoch": 3}, modalities=["audio", "visual"])
    w = loss.branch_weights({"audio": LOGITS_A, "visual": LOGITS_V}, TARGET, epoch=3)
    # audio row 0: p = e^2/(e^2+2) = 0.78699; w = exp(-2 * 0.21301) = 0.65310
    assert w["audio"][0].item() == pytest.approx(0.653098, abs=1e-5)
    expected_a = [hand_weight(LOGITS_A[i].tolist(), int(TARGET[i]), 2.0) for i in range(2)]
    expected_v = [hand_weight(LOGITS_V[i].tolist(), int(TARGET[i]), 0.5) for i in range(2)]
    assert w["audio"].tolist() == pytest.approx(expected_a, abs=1e-6)
    assert w["visual"].tolist() == pytest.approx(expected_v, abs=1e-6)
    # a confident wrong branch is down-weighted, a confident right one keeps weight close to 1
    assert w["visual"][0] < w["audio"][0] < 1.0


def test_weights_are_one_before_the_switch_epoch_and_reweight_from_it():
    loss = LOSSES.create("mars", {"gamma": 1.0, "switch_epoch": 10}, modalities=["audio", "visual"])
    logits = {"audio": LOGITS_A, "visual": LOGITS_V}
    before = loss.branch_weights(logits, TARGET, epoch=9)
    at = loss.branch_weights(logits, TARGET, epoch=10)
    assert all(torch.equal(w, torch.ones(2)) for w in before.values())
    assert all((w < 1).all() for w in at.values())
    ce_loss = LOSSES.create("cross_entropy", {}, modalities=["audio", "visual"])
    assert loss(output(**logits), TARGET, 9).total.item() == pytest.approx(ce_loss(output(**logits), TARGET, 9).total.item())


def test_no_gradient_flows_through_the_weight():
    za, zv = LOGITS_A.clone().requires_grad_(), LOGITS_V.clone().requires_grad_()
    loss = LOSSES.create("mars", {"gamma": 1.5, "switch_epoch": 0}, modalities=["audio", "visual"])
    loss(output(audio=za, visual=zv), TARGET, epoch=0).total.backward()
    w = loss.branch_weights({"audio": LOGITS_A, "visual": LOGITS_V}, TARGET, 0)
    ref_a = LOGITS_A.clone().requires_grad_()
    (w["audio"] * F.cross_entropy(ref_a, TARGET, reduction="none")).mean().backward()
    assert torch.allclose(za.grad, ref_a.grad)


def test_total_is_weighted_branch_cross_entropy():
    loss = LOSSES.create("mars", {"gamma": 1.0, "switch_epoch": 0}, modalities=["audio", "visual"])
    out = loss(output(audio=LOGITS_A, visual=LOGITS_V), TARGET, 0)
    w = loss.branch_weights({"audio": LOGITS_A, "visual": LOGITS_V}, TARGET, 0)
    manual = sum((w[m] * F.cross_entropy(z, TARGET, reduction="none")).mean() for m, z in (("audio", LOGITS_A), ("visual", LOGITS_V)))
    assert out.total.item() == pytest.approx(manual.item(), rel=1e-6)
    assert set(out.terms) == {"ce/audio", "ce/visual", "weight/audio", "weight/visual", "stage"}


def test_gamma_must_name_the_modalities():
    with pytest.raises(ValueError, match="modalities"):
        LOSSES.create("mars", {"gamma": {"audio": 1.0}}, modalities=["audio", "visual"])
    with pytest.raises(ConfigError, match="gama"):
        LOSSES.create("mars", {"gama": 1.0}, modalities=["audio", "visual"])


def test_normalised_weights_have_mean_one_per_branch_and_batch():
    torch.manual_seed(0)
    logits = {"audio": torch.randn(16, 8) * 3, "visual": torch.randn(16, 8)}
    target = torch.randint(0, 8, (16,))
    paper = LOSSES.create("mars", {"gamma": {"audio": 2.0, "visual": 0.5}, "switch_epoch": 0}, modalities=["audio", "visual"])
    normed = LOSSES.create("mars", {"gamma": {"audio": 2.0, "visual": 0.5}, "switch_epoch": 0, "normalize": True},
                           modalities=["audio", "visual"])
    w, n = paper.branch_weights(logits, target, 0), normed.branch_weights(logits, target, 0)
    for m in logits:
        assert n[m].mean().item() == pytest.approx(1.0, abs=1e-6)
        assert torch.allclose(n[m], w[m] / w[m].mean())  # the same ranking of the clips, rescaled
        assert w[m].mean().item() < 0.99  # the paper's weights do shrink the loss
    ones = normed.branch_weights(logits, target, -1)
    assert all(torch.equal(v, torch.ones(16)) for v in ones.values())


# validation NLL per epoch: best at epoch 2 (1.70); epochs 3, 4, 5 do not beat it
SCRIPTED_NLL = [2.0, 1.8, 1.7, 1.75, 1.72, 1.71, 1.5, 1.4]


def test_automatic_switch_fires_when_the_validation_loss_stops_improving():
    loss = LOSSES.create("mars", {"switch_epoch": "auto", "switch_patience": 3}, modalities=["audio", "visual"])
    logits = {"audio": LOGITS_A, "visual": LOGITS_V}
    fired_after = None
    for epoch, nll in enumerate(SCRIPTED_NLL):
        assert all(torch.equal(w, torch.ones(2)) for w in loss.branch_weights(logits, TARGET, epoch).values()), epoch
        assert loss.stage_start_epoch is None
        loss.end_epoch(epoch, {"nll": nll, "accuracy": 0.5})
        if loss.stage_start_epoch is not None:
            fired_after = epoch
            break
    assert fired_after == 5 and loss.stage_start_epoch == 6
    assert all((w < 1).all() for w in loss.branch_weights(logits, TARGET, 6).values())
    loss.end_epoch(6, {"nll": 0.1})  # later epochs change nothing: stage 2 stays
    assert loss.stage_start_epoch == 6
    assert LOSSES.create("mars", {}, modalities=["audio"]).stage_start_epoch == 10  # the paper's fixed L


def test_automatic_switch_decision_survives_a_resume():
    make = lambda: LOSSES.create("mars", {"switch_epoch": "auto", "switch_patience": 3}, modalities=["audio", "visual"])
    whole, first = make(), make()
    for epoch, nll in enumerate(SCRIPTED_NLL[:6]):
        whole.end_epoch(epoch, {"nll": nll})
    for epoch, nll in enumerate(SCRIPTED_NLL[:4]):  # interrupted after epoch 3: best 1.7, one bad epoch
        first.end_epoch(epoch, {"nll": nll})
    saved = first.state_dict()
    resumed = make()
    resumed.load_state_dict(saved)
    for epoch, nll in enumerate(SCRIPTED_NLL[4:6], start=4):
        resumed.end_epoch(epoch, {"nll": nll})
    assert resumed.stage_start_epoch == whole.stage_start_epoch == 6
    fresh = make()
    for epoch, nll in enumerate(SCRIPTED_NLL[4:6], start=4):  # without the saved state it would not have fired
        fresh.end_epoch(epoch, {"nll": nll})
    assert fresh.stage_start_epoch is None


@pytest.mark.parametrize("params, message", [
    ({"switch_epoch": "sometimes"}, "loss.params.switch_epoch"),
    ({"switch_epoch": 5, "switch_patience": 2}, "switch_patience is used only with switch_epoch: auto"),
    ({"switch_epoch": "auto", "switch_patience": 0}, "loss.params.switch_patience"),
    ({"normalise": True}, "unknown key 'loss.params.normalise'"),
])
def test_bad_mars_variant_parameters_are_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        LOSSES.validate_params("mars", params, "loss.params")
