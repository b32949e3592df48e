"""The EMI regressor and its loss: resampling, fusion variants, VAD latent, switchable loss terms."""

import pytest
import torch
import torch.nn.functional as F

from emofuse.tasks.emi.loss import EmiLoss, EmiLossConfig
from emofuse.tasks.emi.model import EmiModelConfig, EmiRegressor, adaptive_avg_pool_time
from emofuse.training.batches import pad_sequences


@pytest.mark.parametrize("steps", [1, 7, 16, 40])
def test_adaptive_pooling_matches_torch_per_row_and_ignores_padding(steps):
    seqs = [torch.randn(t, 3) for t in (5, 16, 33)]
    padded, lengths = pad_sequences([s.numpy() for s in seqs])
    padded[0, 5:] = 1e6  # padding must not leak into any bin
    pooled = adaptive_avg_pool_time(padded, lengths, steps)
    for i, s in enumerate(seqs):
        expected = F.adaptive_avg_pool1d(s.T[None], steps)[0].T
        torch.testing.assert_close(pooled[i], expected)


def inputs(dims, batch=4):
    x = {m: torch.randn(batch, 9 + i, d) for i, (m, d) in enumerate(dims.items())}
    lengths = {m: torch.tensor([v.shape[1]] * (batch - 1) + [3]) for m, v in x.items()}
    return x, lengths


@pytest.mark.parametrize("fusion", ["concat", "average"])
@pytest.mark.parametrize("temporal", ["none", "gru", "transformer"])
def test_variants_give_one_prediction_per_target(fusion, temporal):
    dims = {"visual": 5, "audio": 4, "text": 6, "physio": 2}  # any number of modalities
    model = EmiRegressor(EmiModelConfig(seq_len=8, hidden=16, fusion=fusion, temporal=temporal), dims, n_targets=6)
    out = model(*inputs(dims))
    assert out.pred.shape == (4, 6) and ((out.pred > 0) & (out.pred < 1)).all()  # sigmoid head
    assert set(out.aux) == set(dims) and all(a.shape == (4, 6) for a in out.aux.values())
    assert out.vad.shape == (4, 3)


def test_vad_latent_is_injected_into_the_audio_vector_only_when_on():
    dims = {"visual": 5, "audio": 4}
    torch.manual_seed(0)
    on = EmiRegressor(EmiModelConfig(seq_len=8, hidden=16, dropout=0.0), dims, 2).eval()
    x, lengths = inputs(dims)
    out = on(x, lengths)
    g = on.branches["audio"].project(adaptive_avg_pool_time(x["audio"], lengths["audio"], 8)).mean(1)
    torch.testing.assert_close(out.vad, on.to_vad(g))
    torch.testing.assert_close(out.aux["audio"], torch.sigmoid(on.aux_heads["audio"](g + on.from_vad(out.vad))))
    off = EmiRegressor(EmiModelConfig(seq_len=8, hidden=16, vad=False), dims, 2)
    assert off(x, lengths).vad is None and not hasattr(off, "to_vad")
    with pytest.raises(ValueError, match="vad_modality 'audio'"):
        EmiRegressor(EmiModelConfig(), {"text": 3}, 2)


def test_loss_is_the_weighted_sum_of_its_terms_and_off_terms_are_not_logged():
    dims = {"visual": 5, "audio": 4}
    out = EmiRegressor(EmiModelConfig(seq_len=8, hidden=16), dims, 3)(*inputs(dims))
    target = torch.rand(4, 3)
    weights = {"mse": 1.0, "pearson": 0.5, "aux": 0.3, "vad": 0.1}
    full = EmiLoss(EmiLossConfig(**weights), 3)(out, target, epoch=0)
    assert set(full.terms) == set(weights)
    assert full.total.item() == pytest.approx(sum(weights[k] * full.terms[k] for k in weights), rel=1e-5)
    assert full.terms["mse"] == pytest.approx(F.mse_loss(out.pred, target).item(), rel=1e-6)
    assert full.terms["vad"] == pytest.approx((out.vad**2).mean().item(), rel=1e-6)
    for off in weights:
        loss = EmiLoss(EmiLossConfig(**{**weights, off: 0.0}), 3)(out, target, epoch=0)
        assert off not in loss.terms
        assert loss.total.item() == pytest.approx(full.total.item() - weights[off] * full.terms[off], rel=1e-5)
    with pytest.raises(ValueError, match="nothing to train"):
        EmiLossConfig(mse=0, pearson=0, aux=0, vad=0)


def test_vad_pseudo_label_reading_fits_v_to_the_extra_target_columns():
    dims = {"audio": 4}
    out = EmiRegressor(EmiModelConfig(seq_len=8, hidden=16), dims, 2)(*inputs(dims))
    target = torch.rand(4, 2 + 3)  # 2 targets, then valence, arousal, dominance
    loss = EmiLoss(EmiLossConfig(mse=1.0, pearson=0.0, aux=0.0, vad=1.0, vad_target="columns"), 2)(out, target, 0)
    assert loss.terms["vad"] == pytest.approx(F.mse_loss(out.vad, target[:, 2:]).item(), rel=1e-6)
    assert loss.terms["mse"] == pytest.approx(F.mse_loss(out.pred, target[:, :2]).item(), rel=1e-6)
