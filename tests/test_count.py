"""Accounting pinned to numbers derived by hand (methods.md section 0, anchors)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reshape.accounting import count, count_spec
from reshape.models import build, resolve
from reshape.spec import ReluLayer


def test_resnet18_cifar_reference_counts(resnet18_cifar_spec):
    c = count(build(resnet18_cifar_spec), (3, 32, 32))
    assert c.relus == 557_056
    assert c.relus_without_stem == 491_520
    # stem 64*32*32; each stage 4 ReLU layers of C*H*W
    assert [(s.name, s.relus) for s in c.stages if s.relus] == [
        ("stem", 65_536), ("layer1", 262_144), ("layer2", 131_072),
        ("layer3", 65_536), ("layer4", 32_768)]
    # stem 3*64*9*32*32; layer1 4*64*64*9*32*32; layers 2-4 each 134,217,728
    # (one stride-2 conv, three full convs, one 1x1 projection); fc 512*100.
    assert c.macs == 1_769_472 + 150_994_944 + 3 * 134_217_728 + 51_200 == 555_468_800
    assert c.stage("layer2").macs == 18_874_368 + 3 * 37_748_736 + 2_097_152
    assert c.comparisons == 0
    assert c.nonlinear_depth == 17
    assert c.params == sum(p.numel() for p in build(resnet18_cifar_spec).parameters())


def test_resnet34_cifar_count():
    r = resolve("resnet34", "cifar100")
    assert count(r.model, r.input_shape).relus == 966_656


def test_timm_resnet50_imagenet_count():
    r = resolve("resnet50")
    c = count(r.model, r.input_shape)
    assert r.input_shape == (3, 224, 224)
    assert c.relus == 9_608_704
    assert c.stem_relus == 64 * 112 * 112
    assert c.comparisons == 64 * 56 * 56 * 8  # 3x3 max-pool: 8 comparisons per output
    assert c.nonlinear_depth == 1 + 1 + 16 * 3  # stem ReLU, max-pool, 16 bottlenecks


def test_dataset_preset_sets_cifar_stem_for_timm_resnet18():
    r = resolve("resnet18", "cifar10")
    assert r.spec.stem.kind == "cifar" and r.spec.num_classes == 10
    assert count(r.model, r.input_shape).relus == 557_056
    r = resolve("resnet18", "cifar10", input_size=64)
    assert count(r.model, r.input_shape).relus == 4 * 557_056


def test_removed_and_masked_layers(resnet18_cifar_spec):
    thinned = resnet18_cifar_spec.with_relus(
        [ReluLayer(f"layer{s}.{b}.act2", "removed") for s in range(1, 5) for b in range(2)])
    c = count(build(thinned), (3, 32, 32))
    assert c.relus == 65_536 + 491_520 // 2
    assert c.nonlinear_depth == 1 + 8  # the inner ReLUs are skipped by the shortcut only at act2
    masked = resnet18_cifar_spec.with_relus([
        ReluLayer("layer1.0.act1", "masked", kept=100, granularity="neuron"),
        ReluLayer("layer4.1.act2", "masked", kept=3 * 16, granularity="channel"),
    ])
    c = count(build(masked), (3, 32, 32))
    assert c.relus == 557_056 - 65_536 + 100 - 8_192 + 48
    assert c.nonlinear_depth == 17
    # without weights: the thinned spec on the meta device, the masked one where its masks hold values
    assert count_spec(thinned).relus == 65_536 + 491_520 // 2
    assert count_spec(masked) == c


def test_masked_layer_with_no_kept_relu_adds_no_depth(tiny_spec):
    names = [n for n in tiny_spec.relu_names() if n != "act1"]
    spec = tiny_spec.with_relus([ReluLayer(n, "masked", kept=0, granularity="neuron") for n in names])
    c = count(build(spec), (1, 16, 16))
    assert (c.relus, c.nonlinear_depth) == (4 * 16 * 16, 1)


def test_generic_module_reused_relu_and_functional_relu():
    import torchvision

    # torchvision's BasicBlock calls one ReLU module twice: each call is counted.
    c = count(torchvision.models.resnet18(weights=None), (3, 224, 224))
    assert c.relus == 64 * 112 * 112 + 4 * 64 * 56 * 56 + 4 * 128 * 28 * 28 + 4 * 256 * 14 * 14 + 4 * 512 * 7 * 7
    assert c.stem_relus == 64 * 112 * 112

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.relu(self.conv(x))
            return self.pool(y) + F.avg_pool2d(x.repeat(1, 2, 1, 1), 2)

    c = count(Functional(), (2, 8, 8))
    assert c.relus == 4 * 8 * 8
    assert c.comparisons == 4 * 4 * 4 * 3  # 2x2 pool: 3 comparisons per output
    assert c.macs == 2 * 4 * 9 * 8 * 8
    assert c.nonlinear_depth == 2


def test_count_leaves_the_model_untouched(tiny_spec):
    model = build(tiny_spec).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count(model, (1, 16, 16))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not p.is_meta for p in model.parameters())


def test_bad_input_shape_is_a_clear_error(tiny_spec):
    from reshape.errors import ReshapeError

    with pytest.raises(ReshapeError, match="input shape"):
        count(build(tiny_spec), (1, 0, 16))
    with pytest.raises(ReshapeError, match="cannot run on input shape"):
        count(build(tiny_spec), (3, 16, 16))  # wrong channel count


# --- issue 14: no silent zeros -------------------------------------------------------------
# Each case applies one op to a 2x4x4 input: 32 elements per image.

class Apply(nn.Module):
    """A model whose forward is one function of the input (a ``scale`` parameter at hand)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn
        self.scale = nn.Parameter(torch.ones(2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


HAND_WRITTEN_RELUS = {  # one comparison per element: 32 ReLUs, depth 1
    "clamp(min=0)": lambda m, x: x.clamp(min=0),
    "clamp_min(0)": lambda m, x: x.clamp_min(0),
    "maximum(x, 0)": lambda m, x: torch.maximum(x, torch.zeros_like(x)),
    "maximum(x, 0.5)": lambda m, x: torch.maximum(x, torch.full_like(x, 0.5)),
    "where(x > 0, x, 0)": lambda m, x: torch.where(x > 0, x, 0),
    "x * (x > 0)": lambda m, x: x * (x > 0),
    "Threshold(inplace)": lambda m, x: nn.Threshold(0.1, 0.0, inplace=True)(x * 2),
    "LeakyReLU": lambda m, x: nn.LeakyReLU(0.1)(x),
    "PReLU": lambda m, x: F.prelu(x, m.scale.flatten()),
    "RReLU": lambda m, x: nn.RReLU()(x),  # count runs in eval mode: a fixed slope
    # the input written into a buffer through a view: the buffer is input data from then on
    "relu of a filled buffer": lambda m, x: F.relu(_filled(x)),
}
TWO_SIDED_CLAMPS = {  # a ReLU for one bound; CrypTen pays a second comparison for the other
    "clamp(-1, 1)": lambda m, x: x.clamp(-1, 1),
    "ReLU6(inplace)": lambda m, x: nn.ReLU6(inplace=True)(x * 2),
    "Hardtanh": lambda m, x: nn.Hardtanh()(x),
    "Hardsigmoid": lambda m, x: nn.Hardsigmoid()(x),
}
SMOOTH = {  # one smooth evaluation per element (32), named by its op; never a ReLU
    "sigmoid_": (lambda m, x: (x * 2).sigmoid_(), "sigmoid"),
    "tanh_": (lambda m, x: (x * 2).tanh_(), "tanh"),
    "GELU": (lambda m, x: nn.GELU()(x), "gelu"),
    "GELU(tanh)": (lambda m, x: nn.GELU(approximate="tanh")(x), "gelu"),
    "Hardswish(inplace)": (lambda m, x: nn.Hardswish(inplace=True)(x * 2), "hardswish"),
    "SiLU(inplace)": (lambda m, x: nn.SiLU(inplace=True)(x * 2), "silu"),
    "Mish": (lambda m, x: nn.Mish()(x), "mish"),
    "ELU(inplace)": (lambda m, x: nn.ELU(inplace=True)(x * 2), "elu"),
    "Softplus": (lambda m, x: nn.Softplus()(x), "softplus"),
    "LogSigmoid": (lambda m, x: nn.LogSigmoid()(x), "log_sigmoid"),
    "SELU": (lambda m, x: nn.SELU()(x), "elu"),
    "exp": (lambda m, x: x.exp(), "exp"),
    "1 / x": (lambda m, x: 1 / x, "reciprocal"),
    "public / private": (lambda m, x: m.scale / x, "reciprocal"),  # a private divisor
}


def _filled(x: torch.Tensor) -> torch.Tensor:
    buf = torch.zeros_like(x)
    buf[:, :] = x
    return buf


@pytest.mark.parametrize("name", HAND_WRITTEN_RELUS)
def test_hand_written_and_in_place_relus_are_counted(name):
    c = count(Apply(HAND_WRITTEN_RELUS[name]), (2, 4, 4))
    assert (c.relus, c.comparisons, c.smooth, c.nonlinear_depth, c.unsupported_ops) == (32, 0, 0, 1, {})


@pytest.mark.parametrize("name", TWO_SIDED_CLAMPS)
def test_two_sided_clamps_are_two_comparisons_under_crypten(name):
    c = count(Apply(TWO_SIDED_CLAMPS[name]), (2, 4, 4))
    assert (c.relus, c.comparisons, c.smooth, c.nonlinear_depth, c.convention) == (32, 32, 0, 1, "crypten")
    # the ReLU-count literature's convention: a ReLU6 is one ReLU
    c = count(Apply(TWO_SIDED_CLAMPS[name]), (2, 4, 4), convention="relu-only")
    assert (c.relus, c.comparisons, c.convention) == (32, 0, "relu-only")


def test_relu6_counted_twice_issue_25():
    """The issue's case: a ReLU6 on 8x32x32 outputs was 8,192 ReLUs and nothing else."""
    c = count(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU6()), (3, 32, 32))
    assert (c.relus, c.comparisons) == (8 * 32 * 32, 8 * 32 * 32)


def test_unknown_convention_is_a_clear_error():
    from reshape.errors import ReshapeError

    with pytest.raises(ReshapeError, match="unknown counting convention 'cryptn' .*crypten"):
        count(Apply(TWO_SIDED_CLAMPS["Hardtanh"]), (2, 4, 4), convention="cryptn")


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_nonlinearities_are_their_own_class(name):
    fn, op = SMOOTH[name]
    c = count(Apply(fn), (2, 4, 4))
    assert (c.relus, c.comparisons, c.smooth, c.smooth_ops) == (0, 0, 32, {op: 32})
    assert (c.nonlinear_depth, c.unsupported_ops) == (1, {})
    assert c.to_dict()["smooth_ops"] == {op: 32} and c.stages[0].smooth_ops == {op: 32}


def test_reductions_to_a_scalar_and_private_lookups_issue_25():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    # the issue's crash: a full max reduction (8x32x32 values, one output) then a reshape
    c = count(Apply(lambda m, x: conv(x).amax().reshape(1, 1)), (3, 32, 32))
    assert (c.relus, c.comparisons, c.nonlinear_depth) == (0, 8 * 32 * 32 - 1, 1)
    c = count(Apply(lambda m, x: F.relu(conv(x)).sum()), (3, 32, 32))
    assert (c.relus, c.comparisons) == (8 * 32 * 32, 0)
    # argmax over 32 values per row: 31 comparisons per row (2 rows); the gather at that
    # private index is an oblivious lookup: reported, not counted free
    c = count(Apply(lambda m, x: x.flatten(1).view(1, 2, 16).gather(2, x.view(1, 2, 16).argmax(2, keepdim=True))),
              (2, 4, 4))
    assert c.comparisons == 2 * 15
    assert c.unsupported_ops == {"aten.gather (private index)": 1}
    # a gather at a public index is data movement
    c = count(Apply(lambda m, x: x.flatten(1).gather(1, torch.zeros_like(x.flatten(1)[:, :3], dtype=torch.long))), (2, 4, 4))
    assert (c.comparisons, c.unsupported_ops) == (0, {})


@pytest.mark.parametrize("fn, comparisons", [
    (nn.AdaptiveMaxPool2d(1), 2 * (16 - 1)),  # one 4x4 window per channel: 15 comparisons
    # 4 -> 3 outputs per dim: windows [0,2) [1,3) [2,4), each 2 wide: 9 windows of 4, 3 comparisons each
    (nn.AdaptiveMaxPool2d(3), 2 * 9 * 3),
    (lambda x: x.amax((2, 3)), 2 * 15),  # global max-pooling written as a reduction
    (lambda x: x.max(dim=1).values, 16 * 1),  # max over 2 channels: 1 comparison per position
])
def test_adaptive_and_global_max_pooling_comparisons(fn, comparisons):
    c = count(Apply(lambda m, x: fn(x)), (2, 4, 4))
    assert (c.relus, c.comparisons, c.nonlinear_depth, c.unsupported_ops) == (0, comparisons, 1, {})


def test_softmax_convention():
    # softmax over the 2 channels: 16 rows of 2. 32 softmax elements (an exp each, and the
    # row's normalisation in their price) and the row max that CrypTen subtracts first
    # (2 - 1 = 1 comparison per row: 16).
    c = count(Apply(lambda m, x: torch.softmax(x, dim=1)), (2, 4, 4))
    assert (c.relus, c.comparisons, c.nonlinear_depth) == (0, 16, 1)
    assert c.smooth_ops == {"softmax": 32}
    c = count(Apply(lambda m, x: F.log_softmax(x.flatten(1), dim=1)), (2, 4, 4))
    assert (c.comparisons, c.smooth_ops) == (31, {"softmax": 32})


def test_normalisation_by_private_statistics_is_one_rsqrt_per_group():
    # LayerNorm over the last dim of 4: 2x4 rows; GroupNorm with 2 groups: 2 groups per image
    c = count(Apply(lambda m, x: F.layer_norm(x, (4,))), (2, 4, 4))
    assert (c.relus, c.smooth_ops, c.unsupported_ops) == (0, {"rsqrt": 8}, {})
    c = count(Apply(lambda m, x: F.group_norm(x, 2)), (2, 4, 4))
    assert (c.smooth_ops, c.unsupported_ops) == ({"rsqrt": 2}, {})


def test_unknown_ops_on_the_input_are_reported_not_zero():
    c = count(Apply(lambda m, x: torch.sin(x) + x * x + x.pow(3) + x / x.sum()), (2, 4, 4))
    assert (c.relus, c.smooth) == (0, 0)
    assert c.unsupported_ops == {"aten.div": 1, "aten.mul": 1, "aten.pow": 1, "aten.sin": 1}
    # free ops (affine maps with the model's constants, data movement, average pooling, eval BN)
    # and nonlinearities of the model's own parameters report nothing
    free = Apply(lambda m, x: F.avg_pool2d(nn.BatchNorm2d(2).to("meta").eval()(x * 2 + 1), 2).flatten(1)
                 * m.scale.sigmoid().flatten()[:1] / 3)
    c = count(free, (2, 4, 4))
    assert (c.relus, c.unsupported_ops) == (0, {})


def test_price_adds_the_cost_per_stage_snls_count_and_the_notes(resnet18_cifar_spec):
    """``reshape.accounting.price``: what `reshape count` prints, as one library call."""
    from reshape.accounting import price
    from reshape.cost import estimate

    c = count(build(resnet18_cifar_spec), (3, 32, 32))
    priced = price(c, "delphi", spec=resnet18_cifar_spec)
    assert priced.cost == estimate(c.relus, c.macs, c.nonlinear_depth, "delphi")
    stem = c.stage("stem")
    assert priced.stage_costs[0] == estimate(stem.relus, stem.macs, 0, "delphi", network=False)
    assert priced.stage_costs[0].online_s < priced.cost.online_s  # a stage pays no per-network constants
    assert (priced.relus_snl, priced.snl_omits) == (491_520, "act1")  # SNL's networks have no stem ReLU
    assert priced.notes("r18") == (None, None)
    assert price(c).relus_snl is None  # no spec, no SNL count
    data = priced.to_dict()
    assert data["relus"] == 557_056 and data["relus_snl"] == 491_520 and data["cost"] == priced.cost.to_dict()
    odd = price(count(Apply(lambda m, x: torch.sin(x) + F.gelu(x)), (2, 4, 4)))
    unknown, smooth = odd.notes("odd")
    assert unknown.startswith("odd runs operators") and "aten.sin x1" in unknown and "counted as 0" in unknown
    assert smooth.startswith("odd runs smooth nonlinearities (gelu 32)")


def test_activation_modules_agree_with_forward_hooks():
    """Peer check: the output sizes of the activation modules, read with forward hooks."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU6(inplace=True), nn.Conv2d(4, 4, 3),
                          nn.Hardswish(inplace=True), nn.Conv2d(4, 8, 1), nn.Softplus(), nn.Tanh(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3), nn.SiLU(inplace=True))
    seen: dict[str, int] = {}
    for m in model:
        if isinstance(m, (nn.ReLU6, nn.Hardswish, nn.Softplus, nn.Tanh, nn.SiLU)):
            m.register_forward_hook(lambda m_, _a, out: seen.update({type(m_).__name__.lower(): out[0].numel()}))
    model(torch.zeros(1, 3, 8, 8))
    # ReLU6 4x8x8; Hardswish 4x6x6; Softplus and Tanh 8x6x6 each; SiLU 3
    assert seen == {"relu6": 256, "hardswish": 144, "softplus": 288, "tanh": 288, "silu": 3}
    seen.clear()
    c = count(model, (3, 8, 8))
    assert (c.relus, c.comparisons) == (256, 256)  # the ReLU6: two bounds
    assert c.smooth_ops == {"hardswish": 144, "silu": 3, "softplus": 288, "tanh": 288}
    assert not seen  # and counting did not fire the hooks


# --- issue 14: hooks and several inputs ------------------------------------------------------

def test_count_does_not_fire_user_hooks(tiny_spec):
    model = build(tiny_spec)
    calls: list[str] = []
    model.layer1.register_forward_pre_hook(lambda m, a: calls.append("pre"))
    model.register_forward_hook(lambda m, a, out: calls.append("post"))
    model.layer1[0].register_forward_hook(lambda m, a, kw, out: calls.append("kw"), with_kwargs=True)
    assert count(model, (1, 16, 16)).relus == 4_480
    assert calls == []
    model(torch.zeros(1, 1, 16, 16))
    assert calls == ["pre", "kw", "post"]  # still registered, in order


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.fc = nn.Linear(10, 5)

    def forward(self, image: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.conv(image)).flatten(1), F.relu(self.fc(tabular))], 1)


def test_several_input_shapes():
    from reshape.errors import ReshapeError

    c = count(TwoInputs(), [(3, 4, 4), (10,)])
    # ReLUs: 2x4x4 + 5; MACs: conv 3*2*9*4*4 + fc 10*5
    assert (c.relus, c.macs, c.nonlinear_depth) == (37, 864 + 50, 1)
    assert c.input_shape == ((3, 4, 4), (10,)) and c.to_dict()["input_shape"] == [[3, 4, 4], [10]]
    with pytest.raises(ReshapeError, match=r"takes 2 input\(s\) but 1 .*one per-image shape per input"):
        count(TwoInputs(), (3, 4, 4))
    with pytest.raises(ReshapeError, match="one per forward input"):
        count(TwoInputs(), [(3, 4, 4), "10"])


# --- issue 14: the stem/stage split comes from structure, not names --------------------------

class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(F.relu(self.a(x))))


class UnnamedResNet(nn.Module):
    """Functional ReLUs in the stem and in an MLP head; the blocks live under 'body', not 'layer1'."""

    def __init__(self) -> None:
        super().__init__()
        self.entry = nn.Conv2d(3, 4, 3, padding=1)
        self.body = nn.Sequential(Block(4), Block(4))
        self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(F.relu(self.entry(x)))
        return self.fc2(F.relu(self.fc1(x.mean((2, 3)))))


def test_stage_split_from_residual_blocks():
    c = count(UnnamedResNet(), (3, 8, 8))
    # stem 4x8x8 = 256; each block 2 ReLU layers of 4x8x8 = 512; head fc1 = 6
    assert c.relus == 256 + 2 * 512 + 6
    assert [(s.name, s.relus) for s in c.stages] == [("stem", 256), ("body", 1024), ("head", 6)]
    assert (c.stem_relus, c.relus_without_stem, c.stage_split_reason) == (256, 1030, None)
    assert {(l.name, l.stage) for l in c.layers if l.kind == "relu" and l.name == ""} == {("", "stem"), ("", "head")}
    assert c.stage("body").params == 2 * 2 * (4 * 4 * 9 + 4) and c.stage("head").params == 30 + 14


def test_stage_split_unknown_is_none_with_reason_never_zero():
    import torchvision

    c = count(torchvision.models.vgg11(weights=None), (3, 32, 32))
    assert c.stem_relus is None and c.relus_without_stem is None
    assert "no residual block" in c.stage_split_reason
    assert [s.name for s in c.stages] == ["model"] and c.stages[0].relus == c.relus
    assert c.to_dict()["relus_without_stem"] is None


def test_stage_split_from_timm_feature_info():
    import timm

    with torch.device("meta"):
        model = timm.create_model("mobilenetv2_100", num_classes=10)
    c = count(model, (3, 32, 32))
    # the stem is conv_stem + bn1 (with its ReLU6) at stride 2: 32 x 16 x 16; feature_info's
    # taps end the stages, so blocks.3 (stride 2) joins the tap blocks.4 at 1/16
    assert c.stem_relus == 32 * 16 * 16 and c.stage_split_reason is None
    assert [s.name for s in c.stages] == ["stem", "blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6", "head"]
    assert sum(s.relus for s in c.stages) == c.relus


# --- issue 25: the count command shows every class, names smooth ops, prices honestly -------

def _cli(*args: str):
    from click.testing import CliRunner

    from reshape.cli import cli

    return CliRunner().invoke(cli, ["count", *args])


def test_vit_has_no_relus_and_names_its_gelus_and_softmaxes():
    import json

    res = _cli("vit_tiny_patch16_224", "--dataset", "imagenet", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    # 12 blocks of 197 tokens: MLP hidden 768 (GELU); 3 heads of 197x197 scores (softmax rows
    # of 197: 196 comparisons each); 2 LayerNorms per block + the final one (one rsqrt a token)
    assert data["relus"] == 0
    assert data["smooth_ops"] == {"gelu": 12 * 197 * 768, "softmax": 12 * 3 * 197 * 197, "rsqrt": 25 * 197}
    assert data["smooth"] == 1_815_552 + 1_397_124 + 4_925
    assert data["comparisons"] == 12 * 3 * 197 * 196 and data["convention"] == "crypten"
    assert data["cost"] == {"protocol": "delphi", "estimate": None, "unpriced": ["gelu", "rsqrt", "softmax"]}
    assert "runs smooth nonlinearities (gelu 1,815,552" in res.stderr and "softmax 1,397,124" in res.stderr
    text = _cli("vit_tiny_patch16_224", "--dataset", "imagenet")
    assert "smooth by op: gelu 1,815,552" in text.stdout and "convention crypten" in text.stdout
    assert "delphi estimate: none" in text.stdout


def test_count_output_whole_when_piped_and_wrn_label():
    res = _cli("resnet50", "--dataset", "imagenet")  # CliRunner's stdout is not a terminal
    assert res.exit_code == 0, res.output
    assert "9,608,704" in res.stdout and "1,605,632" in res.stdout and "…" not in res.stdout
    wrn = _cli("wrn22_8", "--dataset", "cifar100").stdout
    # the headline no longer calls the count with the stem's (absent) ReLU SNL's convention
    assert "ReLUs 1,392,640 (the stem has no ReLU)" in wrn and "without it, SNL's" not in wrn
    assert "SNL's convention: 1,359,872 ReLUs" in wrn


def test_count_option_values_checked_before_any_work():
    res = _cli("resnt18", "--protocol", "chetah")  # a bad model too: the option is read first
    assert res.exit_code == 2 and "unknown protocol 'chetah' (did you mean cheetah" in res.output
    assert _cli("resnet18", "--convention", "cryptn").exit_code == 2
    relu_only = _cli("resnet18", "--dataset", "cifar10", "--convention", "relu-only", "--json")
    assert '"convention": "relu-only"' in relu_only.stdout
