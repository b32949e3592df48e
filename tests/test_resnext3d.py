import pytest
import torch

from emofuse.config import ModelConfig
from emofuse.models import ENCODERS, FUSIONS, create_model

TINY = {"blocks": [1, 1, 1, 1], "cardinality": 2, "group_width": 2, "stem": 8}


def expected_parameters(blocks, cardinality, group_width, stem) -> int:
    """ResNeXt parameter count from the architecture alone: conv weights (no bias) and BN scale + shift."""
    total = 3 * stem * 7**3 + 2 * stem
    channels = stem
    for i, n in enumerate(blocks):
        mid = cardinality * group_width * 2**i
        out = 2 * mid
        for b in range(n):
            total += channels * mid + 2 * mid  # 1x1x1 reduce
            total += mid * (mid // cardinality) * 3**3 + 2 * mid  # grouped 3x3x3
            total += mid * out + 2 * out  # 1x1x1 expand
            if channels != out or (b == 0 and i > 0):
                total += channels * out + 2 * out  # projection shortcut
            channels = out
    return total


def test_output_shape_and_stage_dims():
    enc = ENCODERS.create("resnext3d", TINY, input_dim=3).eval()
    assert enc.stage_dims == [8, 8, 16, 32, 64] and enc.out_dim == 64 and len(enc.stages) == 5
    h, lengths = enc.begin(torch.randn(2, 9, 3, 40, 40), None)
    shapes = []
    for stage in enc.stages:
        h, lengths = stage(h, lengths)
        shapes.append(tuple(h.shape))
    # stem: T 9 -> 5 (max-pool), space 40 -> 20 -> 10; layers 2-4 halve T, H and W (ceil)
    assert shapes == [(2, 8, 5, 10, 10), (2, 8, 5, 10, 10), (2, 16, 3, 5, 5), (2, 32, 2, 3, 3), (2, 64, 1, 2, 2)]
    assert lengths.tolist() == [1, 1]
    assert enc(torch.randn(2, 9, 3, 40, 40)).shape == (2, 64)


def test_gradients_reach_the_stem():
    enc = ENCODERS.create("resnext3d", TINY, input_dim=3).train()
    enc(torch.randn(2, 6, 3, 32, 32)).pow(2).mean().backward()
    grad = enc.stages[0].conv[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_padded_frames_do_not_change_a_clip():
    enc = ENCODERS.create("resnext3d", TINY, input_dim=3).eval()
    clip = torch.randn(1, 7, 3, 32, 32)
    padded = torch.cat([clip, torch.randn(1, 6, 3, 32, 32)], dim=1)
    torch.testing.assert_close(enc(padded, torch.tensor([7])), enc(clip))


def test_full_resnext50_parameter_count():
    enc = ENCODERS.create("resnext3d", {}, input_dim=3)
    n = sum(p.numel() for p in enc.parameters())
    assert n == expected_parameters([3, 4, 6, 3], 32, 4, 64)
    assert enc.stage_dims == [64, 256, 512, 1024, 2048]
    # With the 8-class linear classifier: the paper's Table I gives 25.88 M for the ResNeXt50 visual branch.
    assert round((n + 2048 * 8 + 8) / 1e6, 2) == 25.88


def test_bad_input_is_named():
    enc = ENCODERS.create("resnext3d", TINY, input_dim=3)
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\).*\(2, 3, 8, 32, 32\)"):
        enc(torch.randn(2, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="RGB clips"):
        ENCODERS.create("resnext3d", TINY, input_dim=5)


@pytest.mark.skipif("mmtm" not in FUSIONS.names(), reason="the mmtm fusion is not registered yet")
def test_model_fusion_between_resnext_stages_and_an_audio_cnn():
    config = ModelConfig(encoders={"visual": {"name": "resnext3d", "params": TINY},
                                   "audio": {"name": "cnn1d", "params": {"channels": [8, 8]}}},
                         fusion={"name": "mmtm"})
    model = create_model(config, {"visual": 3, "audio": 5}, {"visual": True, "audio": True}, n_classes=4)
    out = model({"visual": torch.randn(2, 6, 3, 32, 32), "audio": torch.randn(2, 20, 5)},
                {"visual": torch.tensor([6, 4]), "audio": torch.tensor([20, 11])})
    assert out.probs.shape == (2, 4)
    out.probs[:, 0].sum().backward()
    assert model.encoders["visual"].stages[0].conv[0].weight.grad.abs().sum() > 0
