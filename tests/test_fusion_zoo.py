"""Every registered fusion: shapes for 2 and 3 modalities, gradients to every encoder, known values."""

import itertools
import math

import numpy as np
import pytest
import torch

from emofuse.config.schema import ModelConfig
from emofuse.losses import LOSSES
from emofuse.models import FUSIONS, ModelOutput, create_model
from emofuse.models.fusion.base import FusionInputs
from emofuse.models.fusion.cbp import CompactBilinearFusion, CountSketch, compact_bilinear
from emofuse.models.fusion.tfn import tensor_fusion

DIMS = {"audio": 20, "visual": 35, "text": 12}
N_CLASSES = 8


def build(fusion: str, modalities, sequence_audio: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    encoders = {m: {"name": "mlp", "params": {"hidden": [16, 16], "dropout": 0.0}} for m in modalities}
    if sequence_audio:
        encoders["audio"] = {"name": "cnn1d", "params": {"channels": [16, 16], "kernel_size": 3}}
    sequence = {m: sequence_audio and m == "audio" for m in modalities}
    model = create_model(ModelConfig(encoders=encoders, fusion={"name": fusion}), {m: DIMS[m] for m in modalities},
                         sequence, N_CLASSES)
    return model, sequence


def batch(modalities, sequence, n=6, steps=25, seed=1):
    g = torch.Generator().manual_seed(seed)
    inputs = {m: torch.randn(n, steps, DIMS[m], generator=g) if sequence[m] else torch.randn(n, DIMS[m], generator=g)
              for m in modalities}
    lengths = {m: torch.randint(5, steps + 1, (n,), generator=g) if sequence[m] else None for m in modalities}
    return inputs, lengths


@pytest.mark.parametrize("fusion", FUSIONS.names())
@pytest.mark.parametrize("modalities", [("audio", "visual"), ("audio", "visual", "text")])
@pytest.mark.parametrize("sequence_audio", [False, True])
def test_shapes_and_gradients_reach_every_encoder(fusion, modalities, sequence_audio):
    if fusion == "tfn" and len(modalities) == 3 and sequence_audio:
        pytest.skip("one 3-modality TFN case is enough (the product is large)")
    if len(modalities) not in (FUSIONS.get(fusion).modality_counts or (len(modalities),)):
        pytest.skip(f"{fusion} is defined for {FUSIONS.get(fusion).modality_counts} modalities (test_three_modalities.py)")
    model, sequence = build(fusion, modalities, sequence_audio)
    inputs, lengths = batch(modalities, sequence)
    out = model(inputs, lengths)
    assert out.probs.shape == (6, N_CLASSES)
    assert torch.allclose(out.probs.sum(1), torch.ones(6), atol=1e-5)
    assert set(out.branch_logits) == set(modalities)
    assert all(z.shape == (6, N_CLASSES) for z in out.branch_logits.values())
    # the fused prediction's gradient reaches the first layer of every encoder
    target = torch.arange(6) % N_CLASSES
    (-out.probs.clamp_min(1e-9).log().gather(1, target[:, None]).sum()).backward()
    for m in modalities:
        first = next(model.encoders[m].stages[0].parameters())
        assert first.grad is not None and first.grad.abs().sum() > 0, f"{fusion}: no gradient reaches the {m} encoder"


@pytest.mark.parametrize("fusion", ["mmtm", "msaf"])
def test_model_fusion_blocks_exchange_information_between_encoders(fusion):
    """In a model-level fusion the audio branch's decision depends on the visual encoder; under averaging it does not."""
    for name, expect_cross in ((fusion, True), ("average", False)):
        model, sequence = build(name, ("audio", "visual"), sequence_audio=True)
        model.train()
        inputs, lengths = batch(("audio", "visual"), sequence)
        model(inputs, lengths).branch_logits["audio"].sum().backward()
        grad = model.encoders["visual"].stages[0].net[0].weight.grad
        crossed = grad is not None and grad.abs().sum() > 0
        assert crossed == expect_cross, name


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_eval_output_does_not_depend_on_batch_padding(fusion):
    model, sequence = build(fusion, ("audio", "visual"), sequence_audio=True)
    model.eval()
    inputs, lengths = batch(("audio", "visual"), sequence, n=4, steps=30)
    lengths["audio"] = torch.tensor([30, 12, 7, 19])
    with torch.no_grad():
        together = model(inputs, lengths).probs
        for i in range(4):
            n = int(lengths["audio"][i])
            alone = model({"audio": inputs["audio"][i:i + 1, :n], "visual": inputs["visual"][i:i + 1]},
                          {"audio": lengths["audio"][i:i + 1], "visual": None}).probs
            assert torch.allclose(alone, together[i:i + 1], atol=1e-5), (fusion, i)


def test_tfn_equals_the_explicit_outer_product():
    g = torch.Generator().manual_seed(0)
    a, v, t = torch.randn(3, 4, generator=g), torch.randn(3, 2, generator=g), torch.randn(3, 3, generator=g)
    fused = tensor_fusion([a, v, t])
    assert fused.shape == (3, 5 * 3 * 4)
    for b in range(3):
        ext = [np.append(x[b].numpy(), 1.0) for x in (a, v, t)]
        explicit = np.array([i * j * k for i, j, k in itertools.product(*ext)])
        np.testing.assert_allclose(fused[b].numpy(), explicit, rtol=1e-5, atol=1e-6)
    # the constant 1 keeps the unimodal terms: the entries paired with the two other 1s are a itself
    np.testing.assert_allclose(fused.reshape(3, 5, 3, 4)[:, :4, -1, -1].numpy(), a.numpy(), rtol=1e-6)


def test_cbp_approximates_the_bilinear_inner_product():
    """<CBP(x, y), CBP(x', y')> estimates <x, x'><y, y'> (the inner product of the outer products)."""
    g = torch.Generator().manual_seed(0)
    x, x2 = torch.randn(2, 64, generator=g)
    y, y2 = torch.randn(2, 48, generator=g)
    x2 = 0.6 * x + 0.8 * x2  # correlated pairs, so the true value is far from 0
    y2 = 0.6 * y + 0.8 * y2
    exact = float((x @ x2) * (y @ y2))
    estimates = []
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        sx, sy = CountSketch(64, 4096, gen), CountSketch(48, 4096, gen)
        z1 = compact_bilinear([sx(x[None]), sy(y[None])])
        z2 = compact_bilinear([sx(x2[None]), sy(y2[None])])
        estimates.append(float((z1 * z2).sum()))
    assert abs(np.mean(estimates) - exact) < 0.1 * abs(exact)
    # and a single sketch of the product of one pair matches the count sketch of the explicit outer product
    gen = torch.Generator().manual_seed(3)
    sx, sy = CountSketch(64, 4096, gen), CountSketch(48, 4096, gen)
    outer = torch.outer(x, y)
    idx_x, idx_y = sx.matrix.abs().argmax(1), sy.matrix.abs().argmax(1)
    sign_x, sign_y = sx.matrix.sum(1), sy.matrix.sum(1)
    direct = torch.zeros(4096)
    for i in range(64):
        direct.index_add_(0, (idx_x[i] + idx_y) % 4096, sign_x[i] * sign_y * outer[i])
    assert torch.allclose(compact_bilinear([sx(x[None]), sy(y[None])])[0], direct, atol=1e-3)


def _output(**logits):
    return ModelOutput(branch_logits=logits, probs=torch.zeros(1))


LOGITS = {"audio": torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
          "visual": torch.tensor([[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]),
          "text": torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])}
TARGET = torch.tensor([0, 1])


def p_true(m, i):
    exps = [math.exp(v) for v in LOGITS[m][i].tolist()]
    return exps[int(TARGET[i])] / sum(exps)


@pytest.mark.parametrize("modalities", [("audio", "visual"), ("audio", "visual", "text")])
def test_multiplication_and_m3er_weights_match_hand_computed_values(modalities):
    logits = {m: LOGITS[m] for m in modalities}
    k = 0.4 / (len(modalities) - 1)
    mult = LOSSES.create("multiplication", {"beta": 0.4}, modalities=list(modalities)).branch_weights(logits, TARGET, 0)
    m3er = LOSSES.create("m3er", {"beta": 0.4}, modalities=list(modalities)).branch_weights(logits, TARGET, 0)
    for m in modalities:
        for i in range(2):
            others = math.prod(1 - p_true(j, i) for j in modalities if j != m)
            assert mult[m][i].item() == pytest.approx(others ** k, rel=1e-5)
            assert m3er[m][i].item() == pytest.approx(p_true(m, i) ** k, rel=1e-5)
    # M3ER's default beta is the Mars paper's 0.2
    assert LOSSES.create("m3er", {}, modalities=["a", "v"]).params.beta == 0.2


def test_focal_loss_matches_hand_computed_value_and_reduces_to_cross_entropy():
    loss = LOSSES.create("focal", {"gamma": 2.0}, modalities=["audio", "visual"])
    out = loss(_output(audio=LOGITS["audio"], visual=LOGITS["visual"]), TARGET, epoch=0)
    expected = sum(
        np.mean([-(1 - p_true(m, i)) ** 2 * math.log(p_true(m, i)) for i in range(2)]) for m in ("audio", "visual")
    )
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    ce = LOSSES.create("cross_entropy", {}, modalities=["audio", "visual"])
    zero = LOSSES.create("focal", {"gamma": 0.0}, modalities=["audio", "visual"])
    o = _output(audio=LOGITS["audio"], visual=LOGITS["visual"])
    assert zero(o, TARGET, 0).total.item() == pytest.approx(ce(o, TARGET, 0).total.item(), rel=1e-6)


def test_feature_fusion_probes_do_not_train_the_encoders():
    model, sequence = build("concat", ("audio", "visual"))
    inputs, lengths = batch(("audio", "visual"), sequence)
    model(inputs, lengths).branch_logits["audio"].sum().backward()
    assert model.encoders["audio"].stages[0].net[0].weight.grad is None
    assert model.classifiers["audio"][1].weight.grad.abs().sum() > 0


def test_cbp_skip_gives_the_classifier_each_modality_beside_the_pooled_code():
    """Without skip, two clips that differ only in x while y is all zeros pool to the same (zero) code; with skip the
    classifier reads [CBP(x, y); x; y], so they stay apart and the code is the plain CBP's."""
    dims = {"audio": 16, "visual": 8}
    x, zeros = torch.randn(2, 16, generator=torch.Generator().manual_seed(1)), torch.zeros(2, 8)
    inputs = FusionInputs(features={"audio": x, "visual": zeros}, branch_logits={}, tokens={})
    plain = CompactBilinearFusion(CompactBilinearFusion.Params(output_dim=256), dims, 3)
    skip = CompactBilinearFusion(CompactBilinearFusion.Params(output_dim=256, skip=True), dims, 3)
    assert torch.allclose(plain.fuse(inputs)[0], plain.fuse(inputs)[1])
    fused = skip.fuse(inputs)
    assert fused.shape == (2, 256 + 16 + 8) and skip.head[-1].in_features == 256 + 16 + 8
    assert torch.equal(fused[:, :256], plain.fuse(inputs)) and torch.equal(fused[:, 256:272], x)
    assert not torch.allclose(fused[0], fused[1])
