"""Build settings: one model, validated in one place, with one name per knob everywhere."""

import pydantic
import pytest

from vecdial.indexer.disk.manifest import Manifest
from vecdial.indexer.errors import CorruptIndex, InvalidInput
from vecdial.indexer.modes import build_settings_of
from vecdial.indexer.modes.settings import KNOBS, BuildSettings, SparseSettings, flat_changes


def manifest_with(sparse: dict | None = None, rotation: str = "pca", **fields) -> Manifest:
    codecs = {"dense": {"rotation": rotation, "block": 32, "dtype": "float32"}, "binary": {"center": False, "index": "flat"}}
    if sparse is not None:
        codecs["sparse"] = sparse
    base = dict(created_at="2024-01-01T00:00:00+00:00", dim=384, count=10, id_kind="int", codecs=codecs)
    return Manifest(**{**base, **fields})


def test_defaults_are_the_measured_ones():
    assert BuildSettings().model_dump() == {
        "rotation": "pca",
        "block": 32,
        "dtype": "float32",
        "binary_center": False,
        "binary_index": "flat",
        "rabitq": True,
        "graph": 0,
        "lexical": True,
        "partitions": None,
        "sample_size": 50_000,
        "batch_size": 8192,
        "seed": 0,
        "sparse": None,
    }
    assert SparseSettings().model_dump() == {
        "max_active": 32,
        "hidden_mult": 8,
        "max_epochs": 8,
        "contrastive_coef": 0.1,
        "flops_coef": 0.05,
        "train_size": 200_000,
        "min_steps": 120,
        "time_limit_s": 540.0,
        "seed": 0,
    }


def test_settings_are_frozen():
    with pytest.raises(pydantic.ValidationError):
        BuildSettings().block = 64


def test_a_change_keeps_every_other_knob_and_leaves_the_original_alone():
    base = BuildSettings(rotation="identity", sparse=SparseSettings(max_active=16))
    new = base.changed({"block": 64})
    assert (new.rotation, new.block, new.sparse) == ("identity", 64, SparseSettings(max_active=16))
    assert base.block == 32


def test_an_unknown_knob_is_named_with_the_knobs_to_use():
    with pytest.raises(InvalidInput, match="unknown setting colour: use rotation, block, dtype"):
        BuildSettings().changed({"colour": "red"})


def test_an_unknown_sparse_knob_is_named_with_the_sparse_knobs():
    with pytest.raises(InvalidInput, match="unknown sparse setting q: use max_active, hidden_mult"):
        BuildSettings().changed({"sparse": {"q": 1}})


def test_the_old_name_of_max_active_says_its_new_name():
    with pytest.raises(InvalidInput, match="k is now max_active"):
        BuildSettings().changed({"sparse": {"k": 16}})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"dtype": "int4"}, "dtype='int4' is not valid: use 'float32' or 'float16'"),
        ({"rotation": "random"}, "rotation='random' is not valid: use 'pca' or 'identity'"),
        ({"binary_index": "ivf"}, "binary_index='ivf' is not valid: use 'flat' or 'hnsw'"),
    ],
)
def test_a_bad_choice_lists_the_choices(changes, message):
    with pytest.raises(InvalidInput, match=message):
        BuildSettings().changed(changes)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"block": 0}, "block=0 is not valid: use a value >= 8"),
        ({"block": 4096}, "block=4096 is not valid: use a value <= 1024"),
        ({"sample_size": 10}, "sample_size=10 is not valid: use a value >= 100"),
        ({"block": "wide"}, "block='wide' is not valid: input should be a valid integer"),
        ({"sparse": {"max_active": 0}}, "sparse.max_active=0 is not valid: use a value >= 1"),
        ({"sparse": {"time_limit_s": 0}}, "sparse.time_limit_s=0 is not valid: use a value > 0"),
    ],
)
def test_a_value_out_of_range_says_the_range(changes, message):
    with pytest.raises(InvalidInput, match=message):
        BuildSettings().changed(changes)


@pytest.mark.parametrize("off", [False, None])
def test_sparse_false_or_none_drops_the_codes(off):
    assert BuildSettings(sparse=SparseSettings()).changed({"sparse": off}).sparse is None


def test_sparse_true_keeps_the_current_sparse_settings_or_takes_the_defaults():
    assert BuildSettings().changed({"sparse": True}).sparse == SparseSettings()
    current = BuildSettings(sparse=SparseSettings(max_active=64))
    assert current.changed({"sparse": True}).sparse == SparseSettings(max_active=64)


def test_a_sparse_object_is_applied_over_the_current_sparse_settings():
    current = BuildSettings(sparse=SparseSettings(max_active=64, hidden_mult=4))
    assert current.changed({"sparse": {"hidden_mult": 2}}).sparse == SparseSettings(max_active=64, hidden_mult=2)
    assert BuildSettings().changed({"sparse": {"hidden_mult": 2}}).sparse == SparseSettings(hidden_mult=2)


def test_sparse_takes_only_a_switch_or_an_object():
    with pytest.raises(InvalidInput, match="sparse=3 is not valid: use false"):
        BuildSettings().changed({"sparse": 3})


def test_an_old_manifest_naming_max_active_k_still_loads():
    old = manifest_with(sparse={"model": {}, "settings": {"k": 16, "hidden_mult": 4}})
    assert build_settings_of(old).sparse == SparseSettings(max_active=16, hidden_mult=4)


def test_a_manifest_gives_back_the_settings_it_records():
    manifest = manifest_with(rotation="identity", sparse={"settings": SparseSettings(max_active=8).model_dump()})
    settings = build_settings_of(manifest)
    assert (settings.rotation, settings.block, settings.sparse) == ("identity", 32, SparseSettings(max_active=8))
    assert build_settings_of(manifest_with()).sparse is None


def test_a_manifest_with_unreadable_sparse_settings_is_corrupt():
    with pytest.raises(CorruptIndex, match="max_active"):
        build_settings_of(manifest_with(sparse={"settings": {"max_active": -1}}))


def test_every_field_of_both_models_is_one_flat_knob():
    assert [k.field for k in KNOBS if not k.sparse] == list(BuildSettings.model_fields)
    assert [k.field for k in KNOBS if k.sparse] == list(SparseSettings.model_fields)
    names = [k.name for k in KNOBS]
    assert len(set(names)) == len(names)
    assert "max_active" in names and "sparse_seed" in names  # seed is the build's; the sparse one is prefixed


def test_flat_knobs_nest_under_sparse_and_turn_it_on():
    assert flat_changes({"block": 64, "max_active": 16, "sparse_seed": 3, "rotation": None}) == {
        "block": 64,
        "sparse": {"max_active": 16, "seed": 3},
    }
    assert flat_changes({"sparse": True}) == {"sparse": True}
    assert flat_changes({"sparse": False}) == {"sparse": False}


def test_a_sparse_knob_with_sparse_switched_off_is_refused():
    with pytest.raises(InvalidInput, match="switched off but max_active given"):
        flat_changes({"sparse": False, "max_active": 16})


def test_an_unknown_flat_knob_is_named():
    with pytest.raises(InvalidInput, match="unknown setting.* k:"):
        flat_changes({"k": 16})
