"""MaskedReLU's in-place training path: exact values and gradients, and its cached floor."""
from __future__ import annotations

import torch

from reshape.layers import MaskedReLU


def _train_step(layer: MaskedReLU, x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Output and input gradient (of the output's sum) through the in-place training path."""
    leaf = x.clone().requires_grad_()
    y = layer(leaf * 1.0)  # a non-leaf input takes the in-place path
    y.sum().backward()
    return y.detach().flatten().tolist(), leaf.grad.flatten().tolist()


def test_kept_relu_passes_no_gradient_at_zero_and_identity_passes_all():
    # Positions:       kept  kept  kept  ident ident ident
    layer = MaskedReLU((6,))
    layer.set_mask(torch.tensor([1.0, 1, 1, 0, 0, 0]))
    y, grad = _train_step(layer, torch.tensor([-2.0, 0, 3, -2, 0, 3]).view(1, 6))
    assert y == [0, 0, 3, -2, 0, 3]
    assert grad == [0, 0, 1, 1, 1, 1]  # relu'(0) = 0, as torch.relu; identity always 1


def test_floor_follows_set_mask_and_load_state_dict_after_a_forward():
    x = torch.tensor([-1.0, -2, 3]).view(1, 3, 1, 1)
    layer = MaskedReLU((3,), "channel")
    layer.set_mask(torch.tensor([1.0, 0, 1]))
    assert _train_step(layer, x) == ([0, -2, 3], [0, 1, 1])

    layer.set_mask(torch.tensor([0.0, 1, 1]))
    assert _train_step(layer, x) == ([-1, 0, 3], [1, 0, 1])

    layer.load_state_dict({"mask": torch.tensor([0.0, 0, 0])})
    assert _train_step(layer, x) == ([-1, -2, 3], [1, 1, 1])

    layer.load_state_dict({"mask": torch.tensor([1.0, 1, 0])}, assign=True)
    assert _train_step(layer, x) == ([0, 0, 3], [0, 0, 1])

    layer.double()  # a new mask tensor and a new input dtype
    y, grad = _train_step(layer, x.double())
    assert (y, grad) == ([0, 0, 3], [0, 0, 1])
