import pytest
import torch

from emofuse.config.schema import ModelConfig
from emofuse.models import ENCODERS, create_model
from emofuse.core.registry import ConfigError

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


class HaraBottleneck(torch.nn.Module):
    """The ResNeXt block of Hara et al.'s 3D-ResNets-PyTorch, written from its description (names as in its
    checkpoints): 1x1x1 conv1, grouped 3x3x3 conv2 (stride), 1x1x1 conv3 to 2 x planes, downsample shortcut."""

    def __init__(self, inplanes, planes, cardinality, stride):
        super().__init__()
        nn = torch.nn
        mid = cardinality * (planes // 32)
        self.conv1, self.bn1 = nn.Conv3d(inplanes, mid, 1, bias=False), nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(mid, mid, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3, self.bn3 = nn.Conv3d(mid, 2 * planes, 1, bias=False), nn.BatchNorm3d(2 * planes)
        self.downsample = nn.Sequential(nn.Conv3d(inplanes, 2 * planes, 1, stride=stride, bias=False),
                                        nn.BatchNorm3d(2 * planes)) if stride != 1 or inplanes != 2 * planes else None

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (self.downsample(x) if self.downsample is not None else x))


class HaraResNeXt(torch.nn.Module):
    def __init__(self, blocks, inplanes=64, cardinality=32):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv3d(3, inplanes, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1, self.maxpool = nn.BatchNorm3d(inplanes), nn.MaxPool3d(3, stride=2, padding=1)
        for i, n in enumerate(blocks):
            planes = 128 * 2**i
            layer = []
            for b in range(n):
                layer.append(HaraBottleneck(inplanes, planes, cardinality, 2 if b == 0 and i > 0 else 1))
                inplanes = 2 * planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.fc = nn.Linear(inplanes, 400)
        self.n_layers = len(blocks)

    def features(self, x):  # x: (B, 3, T, H, W)
        h = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for i in range(self.n_layers):
            h = getattr(self, f"layer{i + 1}")(h)
        return h.mean(dim=(2, 3, 4))


def test_kinetics_checkpoint_of_hara_et_al_loads_and_computes_the_same(tmp_path):
    torch.manual_seed(0)
    reference = HaraResNeXt([1, 2], inplanes=8)
    for m in reference.modules():  # non-trivial BN statistics, so that a misplaced tensor shows
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
    path = tmp_path / "resnext-kinetics.pth"
    torch.save({"arch": "resnext-50", "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    params = {"blocks": [1, 2], "cardinality": 32, "group_width": 4, "stem": 8, "weights": str(path)}
    config = ModelConfig(encoders={"visual": {"name": "resnext3d", "params": params}})
    fresh = create_model(config, {"visual": 3}, {"visual": True}, 8)
    loaded = create_model(config, {"visual": 3}, {"visual": True}, 8, pretrained=True)
    clip = torch.randn(2, 6, 3, 32, 32)
    reference.eval(), loaded.eval(), fresh.eval()
    with torch.no_grad():
        expected = reference.features(clip.transpose(1, 2))
        torch.testing.assert_close(loaded.encoders["visual"](clip), expected, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(fresh.encoders["visual"](clip), expected, atol=1e-3)  # weights only with pretrained=True


def test_unfit_or_unreadable_weights_name_the_file(tmp_path):
    small = ENCODERS.create("resnext3d", TINY, input_dim=3)
    torch.save(small.state_dict(), tmp_path / "tiny.pt")
    other = ENCODERS.create("resnext3d", {**TINY, "stem": 16, "weights": str(tmp_path / "tiny.pt")}, input_dim=3)
    with pytest.raises(ConfigError, match=r"tiny.pt: does not fit this resnext3d .* of another shape"):
        other.load_pretrained()
    same = ENCODERS.create("resnext3d", {**TINY, "weights": str(tmp_path / "tiny.pt")}, input_dim=3)
    same.load_pretrained()  # its own state dict loads
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    for name, message in (("junk.pth", "cannot read resnext3d weights"), ("absent.pth", "does not exist")):
        encoder = ENCODERS.create("resnext3d", {**TINY, "weights": str(tmp_path / name)}, input_dim=3)
        with pytest.raises(ConfigError, match=message):
            encoder.load_pretrained()
