"""AdamW adapts to the torch it runs on (training/optim.py): the fused kernel where torch has it for the device, the
foreach path where the constructor refuses ``fused=True`` (torch 2.3 on CPU, the package's floor)."""

import pytest
import torch

from emofuse.training import optim


def test_fused_where_this_torch_has_it_on_cpu():
    opt = optim.adamw([torch.zeros(3, requires_grad=True)], lr=1e-3, weight_decay=0.0, device=torch.device("cpu"))
    assert opt.param_groups[0]["fused"] is True


class Torch23AdamW(torch.optim.AdamW):
    """AdamW as torch 2.3 builds it on CPU: fused=True is refused in the constructor."""

    def __init__(self, params, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported "
                               "devices: ['cuda', 'xpu', 'privateuseone'].")
        super().__init__(params, fused=fused, **kwargs)


def test_torch_without_a_cpu_kernel_trains_with_the_foreach_path(monkeypatch):
    monkeypatch.setattr(torch.optim, "AdamW", Torch23AdamW)
    weight = torch.ones(3, requires_grad=True)
    opt = optim.adamw([weight], lr=0.1, weight_decay=0.0, device=torch.device("cpu"))
    assert not opt.param_groups[0]["fused"]
    weight.sum().backward()
    opt.step()
    assert torch.allclose(weight.detach(), torch.full((3,), 0.9), atol=1e-4)  # Adam's first step: lr * sign(grad)


def test_other_errors_are_not_hidden(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(torch.optim, "AdamW", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        optim.adamw([torch.zeros(1, requires_grad=True)], lr=1e-3, weight_decay=0.0, device=torch.device("cpu"))
