"""Wide ResNets (Zagoruyko & Komodakis, BMVC 2016): the pre-activation networks of the PI tables.

``WRN-d-k`` has a 3x3 stem conv of 16 channels, three stages of ``(d - 4) / 6``
pre-activation blocks (BN-ReLU-conv-BN-ReLU-conv) of widths ``16k``, ``32k`` and
``64k``, a 1x1 projection shortcut where a block changes shape (it takes the block's
pre-activated input, as in the authors' code), a final BN-ReLU, global average pooling
and a linear classifier. The spec's block kind is ``preact``; it may have any number of
stages. ``timm.create_model('wrn22_8', num_classes=100)`` builds SNL's and SENet's
CIFAR-100 WRN-22-8 (1,392,640 ReLUs at 32x32; SNL's network has no final ReLU and
reports 1,359,872, see ``reshape.analytic.relus_snl``).

ReLUs are named modules (``layer{s}.{b}.act{k}``, ``final_act``), so removed and masked
layers are applied by the shared builder exactly as for timm ResNets.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from timm.layers import SelectAdaptivePool2d

from ..errors import ReshapeError
from ..spec import EXPANSION, FINAL_ACT, ArchSpec, Stage, Stem
from ._builder import NETWORKS
from ._read import READERS
from ._registry import register_family

#: timm name -> (depth d, widen factor k) of the registered WRN-d-k (CIFAR convention, 32x32).
NAMED: dict[str, tuple[int, int]] = {"wrn16_8": (16, 8), "wrn22_8": (22, 8), "wrn28_10": (28, 10)}
#: Stem width and base stage widths of WRN-d-k (times k).
STEM_WIDTH, BASE_WIDTHS = 16, (16, 32, 64)


def wrn_spec(depth: int, widen: int, num_classes: int = 10, input_size: int = 32) -> ArchSpec:
    """The spec of WRN-``depth``-``widen``: three stages of ``(depth - 4) / 6`` blocks."""
    if depth < 10 or (depth - 4) % 6:
        raise ReshapeError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
    if widen < 1:
        raise ReshapeError(f"WRN widen factor must be a positive integer, got {widen}")
    n = (depth - 4) // 6
    return ArchSpec(
        block="preact",
        stages=tuple(Stage(w * widen, n) for w in BASE_WIDTHS),
        stem=Stem(kind="cifar", width=STEM_WIDTH, stride=1),
        num_classes=num_classes,
        input_size=input_size,
        name=f"wrn{depth}_{widen}",
    )


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus the input, or a 1x1 projection of the
    pre-activated input where the shape changes."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.act1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)
                         if stride != 1 or in_chs != out_chs else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        return self.conv2(self.act2(self.bn2(self.conv1(out)))) + shortcut


class PreActResNet(nn.Module):
    """A ``preact`` spec as a network: stem conv (plus max-pool for an ImageNet stem),
    ``layer1..layerN``, final BN-ReLU, pooling and classifier, with timm's classifier API."""

    def __init__(self, spec: ArchSpec, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 global_pool: str = "avg") -> None:
        super().__init__()
        if drop_path_rate:
            raise ReshapeError("WRN blocks have no stochastic depth (drop_path_rate); use drop_rate, "
                               "dropout before the classifier")
        stem = spec.stem
        self.num_classes, self.drop_rate = spec.num_classes, drop_rate
        self.conv1 = nn.Conv2d(spec.in_chans, stem.width, stem.kernel, stride=stem.stride,
                               padding=stem.kernel // 2, bias=False)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem.pool else nn.Identity()
        reduction = stem.stride * (2 if stem.pool else 1)
        # timm's layout: the stem's output first (no stem ReLU here: the conv, or its max-pool), then each stage
        chans, self.feature_info = stem.width, [dict(num_chs=stem.width, reduction=reduction,
                                                     module="maxpool" if stem.pool else "conv1")]
        for s, stage in enumerate(spec.stages, start=1):
            out = stage.width * EXPANSION["preact"]
            stride = 1 if s == 1 else 2
            blocks = [PreActBlock(chans if b == 0 else out, out, stride if b == 0 else 1)
                      for b in range(stage.depth)]
            self.add_module(f"layer{s}", nn.Sequential(*blocks))
            reduction *= stride
            self.feature_info.append(dict(num_chs=out, reduction=reduction, module=f"layer{s}"))
            chans = out
        self.num_stages = len(spec.stages)
        self.num_features = chans
        self.final_bn = nn.BatchNorm2d(chans)
        self.add_module(FINAL_ACT, nn.ReLU(inplace=True))
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(chans * self.global_pool.feat_mult(), spec.num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        """The WRN authors' (and SNL's) init: He fan-out convs, unit BN, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str = "avg") -> None:
        self.num_classes = num_classes
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        for s in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{s}")(x)
        return getattr(self, FINAL_ACT)(self.final_bn(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = F.dropout(self.global_pool(x), p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def read_structure(model: PreActResNet, input_size: int) -> ArchSpec:
    """The spec of a built ``PreActResNet`` without its ReLU states (``spec_of`` adds them)."""
    conv = model.conv1
    stages = tuple(Stage(getattr(model, f"layer{s}")[0].conv1.out_channels // EXPANSION["preact"],
                         len(getattr(model, f"layer{s}"))) for s in range(1, model.num_stages + 1))
    kind = "imagenet" if isinstance(model.maxpool, nn.MaxPool2d) else "cifar"
    return ArchSpec(block="preact", stages=stages, stem=Stem(kind, conv.out_channels, conv.stride[0]),
                    num_classes=model.num_classes, in_chans=conv.in_channels, input_size=input_size)


NETWORKS["preact"] = PreActResNet
READERS[PreActResNet] = read_structure
for _name, (_depth, _widen) in NAMED.items():
    register_family(_name, lambda d=_depth, k=_widen: wrn_spec(d, k), __name__)
