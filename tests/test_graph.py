"""Graph IR and merge passes: block listing, exact merges to 1e-4 everywhere, MAC facts by hand."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from click.testing import CliRunner
from timm.models.resnet import BasicBlock, Bottleneck, downsample_conv
from torch import nn

from reshape.cli import cli
from reshape.accounting import count
from reshape.errors import ReshapeError
from reshape.runs import load_rewritten, save_rewritten
from reshape.graph import (Step, block_costs, block_inputs, fold_batchnorms, linearize,
                           max_relative_error, merge_block, merge_blocks, merge_chain, predicted_macs,
                           remove_activation, replay, trace)
from reshape.graph.conv import compact, compose, fold_bn, fold_shortcut, to_padding_exact
from reshape.models import build, create, resolve
from reshape.spec import ReluLayer


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial eval statistics and affine weights in every BatchNorm; the model goes to eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen))
            m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.2)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.5)
    return model.eval()


def _block(kind: type[nn.Module], inplanes: int, planes: int, stride: int) -> nn.Sequential:
    """One timm block (projection shortcut when shape changes), wrapped so its scope is named '0'."""
    out = planes * kind.expansion
    down = downsample_conv(inplanes, out, 1, stride) if stride != 1 or inplanes != out else None
    torch.manual_seed(0)
    return _randomize_bn(nn.Sequential(kind(inplanes, planes, stride=stride, downsample=down)))


BLOCKS = {  # id: (block, inplanes, planes, stride, shortcut)
    "basic-s1-identity": (BasicBlock, 8, 8, 1, "identity"),
    "basic-s2-projection": (BasicBlock, 8, 16, 2, "projection"),
    "basic-s1-projection": (BasicBlock, 8, 16, 1, "projection"),
    "bottleneck-s1-identity": (Bottleneck, 16, 4, 1, "identity"),
    "bottleneck-s2-projection": (Bottleneck, 8, 4, 2, "projection"),
    "bottleneck-s1-projection": (Bottleneck, 8, 4, 1, "projection"),
}


@pytest.mark.parametrize("size", [9, 12])
@pytest.mark.parametrize("case", list(BLOCKS))
def test_exact_merge_matches_linearized_block_everywhere(case, size):
    kind, inplanes, planes, stride, shortcut = BLOCKS[case]
    mg = trace(_block(kind, inplanes, planes, stride), (inplanes, size, size))
    (block,) = mg.blocks
    assert (block.name, block.stride, block.shortcut_kind) == ("0", stride, shortcut)
    assert len(block.inner_relu_layers) == (1 if kind is BasicBlock else 2)
    mg = linearize(mg, "0")
    reference = copy.deepcopy(mg.module)  # the linearized block, padding-exact form
    mg, report = merge_block(mg, "0")
    assert [d["kind"] for _, d in mg.graph.nodes(data=True)] == ["input", "conv", "act", "output"]
    # the full map, borders included, at the real size (the built-in check runs at <= 12 px)
    error = max_relative_error(reference, mg.to_module(), (inplanes, size, size), seed=1)
    assert error < 1e-4 and report.max_rel_error < 1e-4
    expected_kernel = 3 + 2 * stride if kind is BasicBlock else 3
    assert (report.kernel, report.stride) == (expected_kernel, stride)


def test_standard_padding_merge_is_not_exact_at_borders_and_fails_loudly():
    mg = linearize(trace(_block(BasicBlock, 8, 8, 1), (8, 10, 10)), "0", padding="standard")
    with pytest.raises(ReshapeError, match=r"exact merge of block '0' is not exact: max relative error"):
        merge_block(mg, "0")
    assert len(trace(mg.to_module(), (8, 10, 10)).blocks) == 1  # nothing was rewritten


def test_a_failing_block_leaves_every_block_unmerged(tiny_spec):
    mg = trace(_randomize_bn(build(tiny_spec)), (1, 16, 16))
    mg = linearize(linearize(mg, "layer1.0"), "layer2.0", padding="standard")
    with pytest.raises(ReshapeError, match="block 'layer2.0' is not exact"):
        merge_blocks(mg, ["layer1.0", "layer2.0"])
    assert len(trace(mg.to_module(), (1, 16, 16)).blocks) == 4


def test_merge_needs_a_linearized_block():
    mg = trace(_block(BasicBlock, 8, 8, 1), (8, 10, 10))
    with pytest.raises(ReshapeError, match="still has ReLU layers 0.act1; linearize it first"):
        merge_block(mg, "0")


def test_padding_exact_form_keeps_output_size_and_moves_all_padding_first():
    convs = [nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1)]
    x = torch.randn(1, 4, 11, 11)
    before = nn.Sequential(*convs)(x).shape
    to_padding_exact(convs)
    assert [c.padding[0] for c in convs] == [0 + 1 * (1 + 2 * 1), 0, 0]
    assert nn.Sequential(*convs)(x).shape == before


def test_conv_passes_by_formula():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 5, 3, padding=1), _randomize_bn(nn.BatchNorm2d(5))
    x = torch.randn(2, 3, 7, 7)
    assert torch.allclose(fold_bn(conv, bn)(x), bn(conv(x)), atol=1e-5)

    c1 = nn.Conv2d(3, 6, 3, stride=2, padding=1)
    c2 = nn.Conv2d(6, 5, 3, padding=1)
    to_padding_exact([c1, c2])
    merged = compose(c1, c2)
    # K = k1 + (k2 - 1) s1 = 7, stride s1 s2 = 2, padding p1 + s1 p2 = 1 + 2 = 3
    assert (merged.kernel_size, merged.stride, merged.padding) == ((7, 7), (2, 2), (3, 3))
    assert torch.allclose(merged(x), c2(c1(x)), atol=1e-5)

    square = nn.Conv2d(4, 4, 3, padding=1)
    y = torch.randn(1, 4, 6, 6)
    assert torch.allclose(fold_shortcut(square, None)(y), square(y) + y, atol=1e-5)

    small = compact(compose(nn.Conv2d(4, 4, 3, padding=2), nn.Conv2d(4, 4, 3)), k=3)  # 5x5 pad 2 -> 3x3 pad 1
    assert (small.kernel_size, small.padding) == ((3, 3), (1, 1))


def test_compact_least_squares_fit_beats_the_crop_on_correlated_inputs():
    torch.manual_seed(0)
    c1, c2 = nn.Conv2d(4, 4, 3, padding=2), nn.Conv2d(4, 4, 3)
    exact = compose(c1, c2)
    smooth = nn.functional.avg_pool2d(torch.randn(16, 4, 20, 20), 3, 1, 1)  # spatially correlated
    crop, fitted = compact(exact, 3), compact(exact, 3, inputs=smooth)

    def err(conv):
        with torch.no_grad():
            return float((conv(smooth) - exact(smooth)).norm() / exact(smooth).norm())

    assert err(fitted) < err(crop)


def test_resnet18_cifar_blocks_and_relus():
    r = resolve("resnet18", "cifar100", weights=False)
    mg = trace(r.model, r.input_shape)
    assert [b.name for b in mg.blocks] == [f"layer{s}.{i}" for s in (1, 2, 3, 4) for i in (0, 1)]
    # 64x32x32 = 65,536 per ReLU layer in stage 1, halving per stage; two ReLU layers per block
    assert [b.relus for b in mg.blocks] == [131_072] * 2 + [65_536] * 2 + [32_768] * 2 + [16_384] * 2
    assert [b.inner_relus for b in mg.blocks] == [65_536] * 2 + [32_768] * 2 + [16_384] * 2 + [8_192] * 2
    stem = mg.graph.nodes["act1"]["relus"]
    assert stem == 65_536 and stem + sum(b.relus for b in mg.blocks) == 557_056 == mg.relus
    assert [b.shortcut_kind for b in mg.blocks] == ["identity", "identity", *["projection", "identity"] * 3]
    assert [b.stride for b in mg.blocks] == [1, 1, 2, 1, 2, 1, 2, 1]


def test_resnet18_cifar_merge_macs():
    model = _randomize_bn(create("resnet18_cifar", num_classes=10))
    mg = trace(model, (3, 32, 32))
    s1, s2 = mg.block("layer1.0"), mg.block("layer2.0")
    # stride 1: two 3x3 64->64 convs at 32x32: 2 * 64*64*9*1024
    assert s1.macs == 75_497_472
    # stride 2: 64->128 3x3 at 16x16 (18,874,368) + 128->128 3x3 (37,748,736) + 1x1 shortcut 2,097,152
    assert s2.macs == 56_623_104 + 2_097_152
    expected = {"exact": (104_857_600, 102_760_448),  # 64*64*25*1024, 64*128*49*256
                "compact": (37_748_736, 18_874_368)}  # 64*64*9*1024 (half of 75.5M), 64*128*9*256
    for mode, macs in expected.items():
        assert (predicted_macs(mg, "layer1.0", mode), predicted_macs(mg, "layer2.0", mode)) == macs
        lin = linearize(trace(copy.deepcopy(model), (3, 32, 32)), ["layer1.0", "layer2.0"])
        merged, reports = merge_blocks(lin, ["layer1.0", "layer2.0"], mode)
        assert tuple(r.macs_after for r in reports) == macs
        assert [r.relus_after for r in reports] == [65_536, 32_768]  # post-add ReLUs stay
        assert merged.relus == 557_056 - 65_536 - 32_768
    assert 2 * expected["compact"][0] == s1.macs


def test_masked_relus_count_as_one_layer_and_match_reshape_count(tiny_spec):
    spec = tiny_spec.replace(relus=(ReluLayer("layer1.0.act1", "masked", 100, "neuron"),
                                    ReluLayer("layer2.0.act2", "removed")))
    model = build(spec)
    mg = trace(model, (1, 16, 16))
    assert mg.graph.nodes["layer1_0_act1"]["kind"] == "act"
    assert mg.graph.nodes["layer1_0_act1"]["relus"] == 100
    # layer1.0: 100 kept + 4x16x16 post-add; layer2.0: 8x8x8 inner only (post-add removed)
    assert [b.relus for b in mg.blocks] == [100 + 1024, 512, 256, 128]
    assert mg.relus == count(model, (1, 16, 16)).relus == 1024 + 1124 + 512 + 256 + 128


def test_linearized_form_trains_and_calibrated_compact_merge_runs():
    block = _block(BasicBlock, 8, 8, 1)
    mg = linearize(trace(block, (8, 10, 10)), "0")
    net = mg.to_module().train()
    net(torch.randn(4, 8, 10, 10)).sum().backward()
    assert block[0].conv1.weight.grad is not None and block[0].conv1.padding == (2, 2)
    x = torch.randn(4, 8, 10, 10)
    inputs = block_inputs(mg, ["0"], x)
    assert torch.equal(inputs["0"], x)  # the block is fed by the model input here
    merged, report = merge_block(mg, "0", "compact", inputs=inputs["0"])
    assert (report.kernel, report.padding) == (3, 1) and report.max_rel_error > 0


def test_rewritten_model_saves_as_spec_rewrite_steps_and_weights(tiny_spec, tmp_path):
    steps = [Step("linearize", ("layer1.0", "layer2.0")), Step("merge", ("layer1.0",), mode="compact"),
             Step("merge", ("layer2.0",))]
    mg = replay(_randomize_bn(build(tiny_spec)), (1, 16, 16), steps)
    save_rewritten(tmp_path, tiny_spec, steps, mg)
    spec, loaded = load_rewritten(tmp_path)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.to_module().eval()(x), mg.to_module().eval()(x))
    assert spec == tiny_spec and loaded.relus == mg.relus and len(loaded.blocks) == 2
    shown = CliRunner().invoke(cli, ["graph", str(tmp_path), "--json"])
    assert shown.exit_code == 0, shown.output
    assert [b["name"] for b in json.loads(shown.output)["blocks"]] == ["layer3.0", "layer4.0"]
    refused = CliRunner().invoke(cli, ["graph", str(tmp_path), "--leaf", "layer1"])
    assert refused.exit_code == 1 and "drop --dataset/--input-size/--leaf" in refused.output, refused.output
    (tmp_path / "graph.json").write_text('{"schema_version": 1, "steps": [{"op": "fuse", "blocks": []}]}')
    with pytest.raises(ReshapeError, match=r"steps\[0\]\.op must be one of linearize, merge, got 'fuse'"):
        load_rewritten(tmp_path)


def test_chain_merge_and_single_passes():
    torch.manual_seed(0)
    net = _randomize_bn(nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6),
                                      nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU()))
    to_padding_exact([net[0], net[2]])
    reference = copy.deepcopy(net)
    mg = trace(net, (3, 11, 11))
    mg, report = merge_chain(mg, ["_0", "_1", "_2", "_3"])
    assert (report.kernel, report.stride, report.padding) == (7, 2, 3) and report.max_rel_error < 1e-4
    assert [d["kind"] for _, d in mg.graph.nodes(data=True)] == ["input", "conv", "act", "output"]
    assert max_relative_error(reference, mg.to_module(), (3, 11, 11)) < 1e-4

    mg = remove_activation(mg, "_4")
    assert mg.relus == 0
    with pytest.raises(ReshapeError, match="not a single-path chain|no node named"):
        merge_chain(mg, ["_2", "x"])


def test_fold_batchnorms_whole_model(tiny_spec):
    mg = trace(_randomize_bn(build(tiny_spec)), (1, 16, 16))
    before = mg.relus
    mg = fold_batchnorms(mg)  # raises unless exact
    kinds = [d["kind"] for _, d in mg.graph.nodes(data=True)]
    assert "norm" not in kinds and mg.relus == before


class _DataDependent(nn.Module):
    """Python control flow on a traced value: fx cannot trace it; the meta pass can run it."""

    def forward(self, x):
        return x * 2 if x.shape[-1] % 2 == 0 else x


def test_untraceable_module_names_the_module_and_the_leaf_option():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), _DataDependent())
    expected = r"cannot trace module '1' \(_DataDependent\).*name '1' in leaf_modules"
    with pytest.raises(ReshapeError, match=expected):
        trace(model, (1, 8, 8))
    mg = trace(model, (1, 8, 8), leaf_modules=["1"])
    assert mg.graph.nodes["_1"]["module_type"] == "_DataDependent"
    assert mg.graph.nodes["_1"]["shape"] == (2, 6, 6)


def test_a_leaf_that_names_no_module_is_refused_with_close_matches():
    """The tracer would ignore it silently; `reshape graph --leaf` reaches this check too."""
    model = create("resnet18_cifar", num_classes=10)
    with pytest.raises(ReshapeError, match=r"leaf module 'layer1\.0\.cnv1'.*close matches: layer1\.0\.conv1"):
        trace(model, (3, 32, 32), ["layer1.0.cnv1"])
    assert trace(model, (3, 32, 32), ["layer1.0.conv1", nn.Conv2d]).relus == 557_056  # names and types both


def test_block_costs_adds_the_merged_macs_to_every_block():
    mg = trace(create("resnet18_cifar", num_classes=10), (3, 32, 32))
    rows = block_costs(mg)
    assert [r["name"] for r in rows] == [b.name for b in mg.blocks]
    assert [r["relus"] for r in rows] == [b.relus for b in mg.blocks]
    assert (rows[0]["macs_exact_merge"], rows[0]["macs_compact_merge"]) == (104_857_600, 37_748_736)
    assert rows[2]["macs_exact_merge"] == predicted_macs(mg, "layer2.0", "exact") == 102_760_448


def test_cli_graph_json():
    result = CliRunner().invoke(cli, ["graph", "resnet18", "--dataset", "cifar100", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["blocks"]) == 8 and data["relus"] == 557_056
    first = data["blocks"][0]
    assert (first["name"], first["relus"], first["macs"], first["macs_exact_merge"],
            first["macs_compact_merge"]) == ("layer1.0", 131_072, 75_497_472, 104_857_600, 37_748_736)
    table = CliRunner().invoke(cli, ["graph", "resnet18", "--dataset", "cifar100"])
    assert table.exit_code == 0 and "layer4.1" in table.output
    bad = CliRunner().invoke(cli, ["graph", "no_such_model"])
    assert bad.exit_code == 1 and "unknown model" in bad.output
