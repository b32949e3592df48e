"""The model-level fusion blocks against their papers' formulas, computed by hand (numpy, float64) on tiny inputs with
small known weights: MMTM (Joze et al. 2020), MSAF (Su et al. 2020) and CFN-SR (Fu et al. 2021). Each case is
chosen so that a changed formula (a ReLU or a factor left out, a mean over padded steps, a softmax over the wrong
axis, a missing residual or mask) gives other numbers."""

import numpy as np
import torch
from torch import nn

from emofuse.models.fusion.base import FusionInputs
from emofuse.models.fusion.cfn_sr import CFNSRFusion
from emofuse.models.fusion.mmtm import MMTMBlock
from emofuse.models.fusion.msaf import MSAFBlock


def setw(layer: nn.Module, **values) -> None:
    with torch.no_grad():
        for name, value in values.items():
            getattr(layer, name).copy_(torch.tensor(value, dtype=torch.float32))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# audio: a sequence (1, 2 channels, 3 steps) whose third step is padding (large, so a mean over it would show);
# visual: a clip vector (1, 3 channels).
AUDIO = np.array([[[1.0, -0.5, 9.0], [0.5, 1.5, -9.0]]])
AUDIO_LENGTHS = torch.tensor([2])
VISUAL = np.array([[0.2, -1.0, 0.7]])


def states():
    return {"audio": (torch.tensor(AUDIO, dtype=torch.float32), AUDIO_LENGTHS),
            "visual": (torch.tensor(VISUAL, dtype=torch.float32), None)}


def test_mmtm_is_cross_modal_squeeze_and_excitation():
    block = MMTMBlock({"audio": 2, "visual": 3}, reduction=5.0)  # joint code of 2 * 5 / 5 = 2
    W = np.array([[0.5, -0.3, 0.8, 0.1, -0.2], [-0.6, 0.4, -0.5, 0.3, 0.2]])
    b = np.array([0.1, -0.4])
    Wa, ba = np.array([[0.7, -0.2], [0.3, 0.9]]), np.array([0.0, -0.1])
    Wv, bv = np.array([[0.4, 0.1], [-0.8, 0.5], [0.2, -0.3]]), np.array([0.2, 0.0, -0.2])
    setw(block.squeeze[0], weight=W, bias=b)
    setw(block.excite["audio"], weight=Wa, bias=ba)
    setw(block.excite["visual"], weight=Wv, bias=bv)
    out = block(states())

    s_audio = AUDIO[0, :, :2].mean(axis=1)  # squeeze: the mean over the valid steps only
    s = np.concatenate([s_audio, VISUAL[0]])
    z = np.maximum(W @ s + b, 0)  # joint code, ReLU
    assert (W @ s + b < 0).any()  # the ReLU acts in this case
    e_audio, e_visual = 2 * sigmoid(Wa @ z + ba), 2 * sigmoid(Wv @ z + bv)  # excitation in (0, 2)
    np.testing.assert_allclose(out["audio"].detach().numpy(), AUDIO * e_audio[None, :, None], rtol=1e-5)
    np.testing.assert_allclose(out["visual"].detach().numpy(), VISUAL * e_visual[None, :], rtol=1e-5)


def test_msaf_is_split_attention_with_a_softmax_over_all_blocks():
    # visual's 3 channels in blocks of 2: [v0, v1], [v2, 0 (padding)]; audio's 2 channels: one block.
    block = MSAFBlock({"audio": 2, "visual": 3}, block_channels=2, reduction=2, lowest=0.1).eval()
    w, b = np.array([[0.6, -0.4]]), np.array([0.05])
    mean, var, gamma, beta, eps = 0.2, 2.0, 1.5, 0.3, block.joint[1].eps
    A = [np.array([[0.9], [-0.4]]), np.array([[-0.3], [0.8]]), np.array([[0.5], [0.2]])]  # audio, visual 1, visual 2
    c = [np.array([0.1, 0.0]), np.array([-0.2, 0.3]), np.array([0.0, -0.1])]
    setw(block.joint[0], weight=w, bias=b)
    setw(block.joint[1], weight=[gamma], bias=[beta], running_mean=[mean], running_var=[var])
    for layer, weight, bias in zip(block.attend, A, c):
        setw(layer, weight=weight, bias=bias)
    out = block(states())

    audio_sum = AUDIO[0, :, :2].mean(axis=1)  # one block: its sum is itself, squeezed over the valid steps
    visual_sum = VISUAL[0, :2] + np.array([VISUAL[0, 2], 0.0])  # the visual blocks summed
    joint = audio_sum + visual_sum  # summed over the modalities
    pre = (w @ joint + b - mean) / np.sqrt(var + eps) * gamma + beta  # BN with its running statistics
    z = np.maximum(pre, 0)
    assert z[0] > 0
    logits = np.stack([a @ z + cc for a, cc in zip(A, c)])  # (3 blocks, 2 channels)
    att = 0.1 + softmax(logits, axis=0) * 0.9  # each channel: a softmax over the blocks, floored at 0.1
    np.testing.assert_allclose(out["audio"].detach().numpy(), AUDIO * att[0][None, :, None], rtol=1e-5)
    visual = VISUAL[0] * np.array([att[1, 0], att[1, 1], att[2, 0]])
    np.testing.assert_allclose(out["visual"].detach().numpy(), visual[None], rtol=1e-5)


def attention(q_in, kv_in, pad, Wq, Wk, Wv, bq, bk, bv, Wo, bo):
    """One-head scaled dot-product attention (Vaswani et al. 2017), padded keys left out."""
    q, k, v = q_in @ Wq.T + bq, kv_in @ Wk.T + bk, kv_in @ Wv.T + bv
    scores = q @ k.T / np.sqrt(q.shape[1])
    scores[:, pad] = -np.inf
    return softmax(scores, axis=1) @ v @ Wo.T + bo


def layer_norm(x, eps=1e-5):
    return (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + eps)


def test_cfn_sr_is_self_attention_then_cross_attention_with_a_self_residual():
    d = 3
    fusion = CFNSRFusion(CFNSRFusion.Params(primary="visual", d_model=d, heads=1, dropout=0.0),
                         {"audio": 2, "visual": 3}, 4, {"audio": [2], "visual": [3]}).eval()
    rng = np.random.default_rng(0)
    P = {"audio": (rng.uniform(-1, 1, (d, 2)).round(1), rng.uniform(-0.5, 0.5, d).round(1)),
         "visual": (rng.uniform(-1, 1, (d, 3)).round(1), rng.uniform(-0.5, 0.5, d).round(1))}
    for m, (weight, bias) in P.items():
        setw(fusion.project[m], weight=weight, bias=bias)
    heads = {}
    for name, layer in (("self", fusion.self_attention["audio"]), ("cross", fusion.cross_attention["audio"])):
        w_in, b_in = rng.uniform(-1, 1, (3 * d, d)).round(1), rng.uniform(-0.3, 0.3, 3 * d).round(1)
        w_out, b_out = rng.uniform(-1, 1, (d, d)).round(1), rng.uniform(-0.3, 0.3, d).round(1)
        setw(layer, in_proj_weight=w_in, in_proj_bias=b_in)
        setw(layer.out_proj, weight=w_out, bias=b_out)
        heads[name] = (*np.split(w_in, 3), *np.split(b_in, 3), w_out, b_out)
    inputs = FusionInputs(features={}, branch_logits={}, tokens=states())
    fused = fusion.fuse(inputs).detach().numpy()

    pad = np.array([False, False, True])  # audio's third step
    audio = AUDIO[0].T @ P["audio"][0].T + P["audio"][1]  # (3 steps, d) tokens
    visual = VISUAL @ P["visual"][0].T + P["visual"][1]  # a clip vector: one token
    aux = layer_norm(audio + attention(audio, audio, pad, *heads["self"]))  # auxiliary refined by self-attention
    attended = attention(visual, aux, pad, *heads["cross"])  # Q = primary, K = V = auxiliary
    primary = layer_norm(visual + attended)  # the self-residual
    expected = np.concatenate([primary.mean(0), aux[~pad].mean(0)])
    np.testing.assert_allclose(fused[0], expected, rtol=1e-4, atol=1e-5)
