from __future__ import annotations

import json

import pytest

from reshape.errors import SpecError
from reshape.spec import ArchSpec, ReluLayer, Stage, load_spec, save_spec


def test_json_round_trip_is_lossless(resnet18_cifar_spec, tmp_path):
    spec = resnet18_cifar_spec.with_relus([
        ReluLayer("layer1.0.act2", "removed"),
        ReluLayer("layer2.1.act1", "masked", kept=100, granularity="neuron"),
    ]).replace(name="demo")
    path = tmp_path / "s.json"
    save_spec(spec, path)
    assert load_spec(path) == spec
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    assert data["relus"][0] == {"name": "layer1.0.act2", "state": "removed"}
    assert ArchSpec.from_json(spec.to_json()).to_json() == spec.to_json()


def test_relu_names_follow_timm_module_paths():
    spec = ArchSpec(block="bottleneck", stages=(Stage(8, 2), Stage(16, 1), Stage(16, 1), Stage(16, 1)))
    assert spec.relu_names()[:10] == ["act1", "layer1.0.act1", "layer1.0.act2", "layer1.0.act3",
                                      "layer1.1.act1", "layer1.1.act2", "layer1.1.act3",
                                      "layer2.0.act1", "layer2.0.act2", "layer2.0.act3"]
    assert len(spec.relu_names()) == 1 + 3 * 5


def test_with_relus_orders_and_drops_kept(resnet18_cifar_spec):
    spec = resnet18_cifar_spec.with_relus([ReluLayer("layer2.0.act1", "removed"),
                                           ReluLayer("act1", "removed")])
    assert [l.name for l in spec.relus] == ["act1", "layer2.0.act1"]
    spec = spec.with_relus([ReluLayer("act1", "kept")])
    assert [l.name for l in spec.relus] == ["layer2.0.act1"]


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["stages"][1].update(width=0), "spec.stages[1].width"),
    (lambda d: d["stages"][0].update(depth=-1), "spec.stages[0].depth"),
    (lambda d: d.update(block="dense"), "spec.block"),
    (lambda d: d["stem"].update(kind="vit"), "spec.stem.kind"),
    (lambda d: d.update(input_size=0), "spec.input_size"),
    (lambda d: d.update(input_size=4), "spec.input_size"),
    (lambda d: d.update(schema_version=99), "spec.schema_version"),
    (lambda d: d.pop("schema_version"), "spec.schema_version"),
    (lambda d: d.update(colour="red"), "spec.colour"),
    (lambda d: d["stages"][0].update(stride=2), "spec.stages[0].stride"),
    (lambda d: d.update(stages=[]), "spec.stages"),
    (lambda d: d.update(stages=d["stages"][:3]), "spec.stages"),  # timm builds 4 stages
    (lambda d: d.update(relus=[{"name": "layer1.5.act1", "state": "removed"}]), "spec.relus[0].name"),
    (lambda d: d.update(relus=[{"name": "act1", "state": "gone"}]), "spec.relus[0].state"),
    (lambda d: d.update(relus=[{"name": "act1", "state": "masked"}]), "spec.relus[0].kept"),
    (lambda d: d.update(relus=[{"name": "act1", "state": "removed", "kept": 3}]), "spec.relus[0].kept"),
])
def test_malformed_specs_name_the_field(resnet18_cifar_spec, mutate, field):
    data = resnet18_cifar_spec.to_dict()
    mutate(data)
    with pytest.raises(SpecError) as err:
        ArchSpec.from_dict(data)
    assert err.value.field == field
    assert str(err.value).startswith(field + ":")


def test_load_spec_reports_bad_json(tmp_path):
    from reshape.errors import ReshapeError

    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(ReshapeError, match="not valid JSON"):
        load_spec(bad)
    with pytest.raises(ReshapeError, match="not found"):
        load_spec(tmp_path / "missing.json")
