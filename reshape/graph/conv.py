"""Convolution algebra behind the merge passes (methods.md section 5).

Pure functions on modules: each returns a new ``nn.Conv2d`` and leaves its inputs
alone, except ``to_padding_exact`` which converts a chain in place (the form the
linearized block is trained and evaluated in). Only square, ungrouped, undilated 2-d
convolutions with zero padding are merged; anything else is a ReshapeError naming the
layer. Kernels are composed in the weights' dtype with one matrix product or one
``conv_transpose2d`` (float32 keeps a merged block within ~1e-6 relative).

* BN folding: t = gamma / sqrt(var + eps); W' = W * t; b' = beta + (b - mean) * t
  (``torch.nn.utils.fusion.fuse_conv_bn_weights``).
* Composition of conv1 (k1, s1, p1) then conv2 (k2, s2, p2): K = k1 + (k2 - 1) s1,
  stride s1 s2, padding p1 + s1 p2, W = sum_m sum_ab W2[o,m,a,b] W1[m,c,u-s1 a,v-s1 b]
  (one ``conv_transpose2d`` of W1 by W2 dilated by s1), b = b2 + sum W2 b1.
* Padding-exact form: all padding on the first conv, P = p1 + s1 (p2 + s2 (p3 + ...)),
  later convs unpadded: the composed conv then equals the chain everywhere.
* Shortcut folding: a 1x1 (or any k_s, stride s) shortcut conv, or the identity, added
  to the merged kernel at offset P - p_s.
* Compact kernel: the central k x k crop (the least-squares fit for i.i.d. zero-mean
  inputs, where the output error is the energy of the dropped taps), or, given
  calibration inputs, ridge least squares on the response, pulled toward the crop.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..errors import ReshapeError

#: Ridge strength of the calibrated compact fit, relative to the mean input energy per tap.
RIDGE = 1e-3


def square(conv: nn.Conv2d, name: str = "conv") -> tuple[int, int, int]:
    """(kernel, stride, padding) of a mergeable conv; ReshapeError otherwise."""
    k, s, p, d = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    if (not isinstance(conv, nn.Conv2d) or conv.groups != 1 or d != (1, 1) or isinstance(p, str)
            or conv.padding_mode != "zeros" or k[0] != k[1] or s[0] != s[1] or p[0] != p[1]):
        raise ReshapeError(f"cannot merge '{name}' ({conv}): only square, ungrouped, undilated, "
                           "zero-padded Conv2d layers compose into one kernel")
    return k[0], s[0], p[0]


def make_conv(weight: torch.Tensor, bias: torch.Tensor, like: nn.Conv2d,
              stride: int | None = None, padding: int | None = None) -> nn.Conv2d:
    """A biased Conv2d holding ``weight``/``bias`` (no init work), otherwise configured like ``like``."""
    conv = nn.utils.skip_init(
        nn.Conv2d, weight.shape[1] * like.groups, weight.shape[0], tuple(weight.shape[2:]),
        stride=like.stride if stride is None else stride,
        padding=like.padding if padding is None else padding,
        dilation=like.dilation, groups=like.groups, padding_mode=like.padding_mode,
        device=like.weight.device, dtype=like.weight.dtype)
    conv.weight = nn.Parameter(weight.detach().to(like.weight.dtype))
    conv.bias = nn.Parameter(bias.detach().to(like.weight.dtype))
    return conv


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    if conv.bias is None:
        return conv.weight.new_zeros(conv.out_channels)
    return conv.bias.detach()


def fold_bn(conv: nn.Conv2d, bn: nn.modules.batchnorm._BatchNorm) -> nn.Conv2d:
    """``conv`` followed by ``bn`` (eval statistics) as one biased conv."""
    if bn.running_mean is None or not bn.affine:
        raise ReshapeError(f"cannot fold {bn}: BatchNorm needs running statistics and affine weights")
    w, b = fuse_conv_bn_weights(conv.weight.detach(), _bias(conv), bn.running_mean, bn.running_var,
                                bn.eps, bn.weight.detach(), bn.bias.detach())
    return make_conv(w, b, conv)


def compose(first: nn.Conv2d, second: nn.Conv2d) -> nn.Conv2d:
    """One conv equal to ``second(first(x))`` when ``second`` is unpadded (padding-exact form)."""
    k1, s1, p1 = square(first, "first conv")
    _, s2, p2 = square(second, "second conv")
    w1, w2 = first.weight.detach(), second.weight.detach()
    if w2.shape[-1] == 1:  # 1x1 second conv: one matrix product per tap of the first
        weight = (w2.flatten(1) @ w1.flatten(1)).view(w2.shape[0], *w1.shape[1:])
    elif w1.shape[-1] == 1 and s1 == 1:  # 1x1 first conv: one matrix product per tap of the second
        weight = (w2.permute(0, 2, 3, 1) @ w1.flatten(1)).permute(0, 3, 1, 2)
    else:
        weight = F.conv_transpose2d(w1.transpose(0, 1), w2.transpose(0, 1), dilation=s1).transpose(0, 1)
    bias = _bias(second) + w2.sum(dim=(2, 3)) @ _bias(first)
    return make_conv(weight, bias, first, s1 * s2, p1 + s1 * p2)


def to_padding_exact(chain: list[nn.Conv2d]) -> None:
    """Move all padding of a conv chain onto its first conv, in place; output sizes are unchanged."""
    total = 0
    for conv in reversed(chain):
        _, s, p = square(conv)
        total = p + s * total
    for i, conv in enumerate(chain):
        conv.padding = (total, total) if i == 0 else (0, 0)


def fold_shortcut(merged: nn.Conv2d, shortcut: nn.Conv2d | None) -> nn.Conv2d:
    """``merged(x) + shortcut(x)`` as one conv; ``shortcut=None`` is the identity."""
    k, s, p = square(merged, "merged conv")
    weight, bias = merged.weight.detach().clone(), _bias(merged).clone()
    if shortcut is None:
        if s != 1 or merged.in_channels != merged.out_channels:
            raise ReshapeError(f"an identity shortcut needs stride 1 and equal channels; the merged "
                               f"conv has stride {s}, {merged.in_channels} -> {merged.out_channels}")
        ws, ss, ps = torch.eye(merged.out_channels).to(weight)[:, :, None, None], 1, 0
    else:
        ks, ss, ps = square(shortcut, "shortcut conv")
        ws = shortcut.weight.detach()
        bias += _bias(shortcut)
    off, ks = p - ps, ws.shape[-1]
    if ss != s or off < 0 or off + ks > k:
        raise ReshapeError(f"the shortcut (kernel {ks}, stride {ss}, padding {ps}) does not align "
                           f"with the merged kernel (kernel {k}, stride {s}, padding {p})")
    weight[:, :, off:off + ks, off:off + ks] += ws
    return make_conv(weight, bias, merged)


def compact(merged: nn.Conv2d, k: int = 3, inputs: torch.Tensor | None = None) -> nn.Conv2d:
    """A k x k conv approximating ``merged`` (same stride and output size).

    Without ``inputs``: the centre crop. With calibration ``inputs`` (N, C, H, W, the
    block's real input activations): ridge least squares on the response of ``merged``.
    """
    big, s, p = square(merged, "merged conv")
    if (big - k) % 2:
        raise ReshapeError(f"a {k}x{k} kernel cannot be centred in the merged {big}x{big}; use an "
                           f"odd/even k matching the merged kernel's parity")
    weight, bias = merged.weight.detach(), _bias(merged)
    cut = (big - k) // 2
    weight = weight[:, :, cut:cut + k, cut:cut + k].clone() if cut >= 0 else F.pad(weight, [-cut] * 4)
    small = make_conv(weight, bias, merged, padding=p - cut)
    if inputs is not None:
        with torch.no_grad():
            weight, bias = _ridge_fit(small, merged, inputs)
            small.weight.copy_(weight)
            small.bias.copy_(bias)
    return small


def _ridge_fit(small: nn.Conv2d, merged: nn.Conv2d, inputs: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """argmin ||small(x) - merged(x)||^2 + RIDGE * E|x|^2 * ||theta - theta_crop||^2 over the inputs."""
    x = inputs.detach().double()
    target = F.conv2d(x, merged.weight.double(), merged.bias.double(), merged.stride, merged.padding)
    cols = F.unfold(x, small.kernel_size, padding=small.padding, stride=small.stride)  # N, C*k*k, L
    a = torch.cat([cols, torch.ones_like(cols[:, :1])], dim=1).transpose(1, 2).reshape(-1, cols.shape[1] + 1)
    y = target.flatten(2).transpose(1, 2).reshape(-1, target.shape[1])
    prior = torch.cat([small.weight.double().flatten(1), small.bias.double()[:, None]], dim=1).T
    gram = a.T @ a
    lam = RIDGE * gram.diagonal().mean()
    theta = torch.linalg.solve(gram + lam * torch.eye(len(gram), dtype=gram.dtype), a.T @ y + lam * prior)
    return theta[:-1].T.reshape_as(small.weight), theta[-1]
