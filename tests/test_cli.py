"""The command line: build, search, eval and info on real files; errors as one line and exit 2."""

import argparse
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vecdial.indexer.modes.settings import KNOBS
from vecdial.service.cli import main


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def run(capsys, data_dir, *args) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def write_fvecs(path, x: np.ndarray) -> None:
    dims = np.full((len(x), 1), x.shape[1], dtype=np.int32)
    np.hstack([dims, x.astype(np.float32).view(np.int32)]).tofile(path)


def test_build_from_npy_then_search_finds_the_vector_itself(capsys, tmp_path, data_dir, tiny_dataset):
    np.save(tmp_path / "vecs.npy", tiny_dataset.vectors)
    code, out, _ = run(capsys, data_dir, "build", tmp_path / "vecs.npy", "--quiet")
    assert code == 0 and "300 vectors of 384 dims" in out
    np.save(tmp_path / "q.npy", tiny_dataset.vectors[7])
    code, out, _ = run(
        capsys, data_dir, "search", "-c", "vecs", "--vector", tmp_path / "q.npy", "-b", "binary:rescore=10", "-k", "3", "--json"
    )
    result = json.loads(out)
    assert code == 0
    assert result["hits"][0]["id"] == 7
    assert [s["stage"] for s in result["explain"]["stages"]] == ["binary:bits=384", "rescore:dim=384"]


def test_fvecs_and_float16_npy_inputs_build_the_same_index(capsys, tmp_path, data_dir, tiny_dataset):
    x = np.asarray(tiny_dataset.vectors)
    write_fvecs(tmp_path / "a.fvecs", x)
    np.save(tmp_path / "b.npy", x.astype(np.float16))
    assert run(capsys, data_dir, "build", tmp_path / "a.fvecs", "--quiet")[0] == 0
    assert run(capsys, data_dir, "build", tmp_path / "b.npy", "--quiet")[0] == 0
    np.save(tmp_path / "q.npy", x[:3])
    hits = []
    for name in ("a", "b"):
        _, out, _ = run(capsys, data_dir, "search", "-c", name, "--vector", tmp_path / "q.npy", "-k", "5", "--json")
        hits.append([[h["id"] for h in row] for row in json.loads(out)["results"]])
    assert hits[0] == hits[1]


def test_parquet_keeps_string_ids_and_texts(capsys, tmp_path, data_dir, tiny_dataset):
    table = pa.table({"id": list(tiny_dataset.ids), "vector": list(np.asarray(tiny_dataset.vectors)), "text": tiny_dataset.texts})
    pq.write_table(table, tmp_path / "docs.parquet")
    assert run(capsys, data_dir, "build", tmp_path / "docs.parquet", "--quiet")[0] == 0
    np.save(tmp_path / "q.npy", tiny_dataset.vectors[11])
    _, out, _ = run(capsys, data_dir, "search", "-c", "docs", "--vector", tmp_path / "q.npy", "-k", "1")
    assert str(tiny_dataset.ids[11]) in out


def test_jsonl_texts_are_encoded_and_searchable_by_text(capsys, tmp_path, data_dir):
    lines = [
        {"id": "tea", "text": "How to brew green tea at the right temperature"},
        {"id": "rust", "text": "Ownership and borrowing in the Rust programming language"},
        {"id": "bread", "text": "Baking sourdough bread with a natural starter"},
    ]
    (tmp_path / "docs.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    assert run(capsys, data_dir, "build", tmp_path / "docs.jsonl", "--quiet")[0] == 0
    _, out, _ = run(capsys, data_dir, "search", "-c", "docs", "--text", "memory safety in systems languages", "-k", "1", "--json")
    assert json.loads(out)["hits"][0]["id"] == "rust"


def test_info_describes_the_collection(capsys, tmp_path, data_dir, tiny_dataset):
    np.save(tmp_path / "vecs.npy", tiny_dataset.vectors)
    run(capsys, data_dir, "build", tmp_path / "vecs.npy", "--quiet", "--rotation", "identity")
    code, out, err = run(capsys, data_dir, "info", "-c", "vecs", "--verify")
    info = json.loads(out)
    assert code == 0 and info["size"] == 300 and info["dim"] == 384 and info["settings"]["rotation"] == "identity"
    assert f"verified: every file of version {info['version']} matches" in err
    assert run(capsys, data_dir, "info")[1].split() == ["vecs"]


@pytest.mark.parametrize(
    "command", ["search -c vecs --vector q.npy -k 1", "info -c vecs", "info", "eval -c vecs --queries q.npy", "repair -c vecs --dry-run"]
)
def test_data_dir_works_after_the_command_as_before_it(capsys, tmp_path, data_dir, tiny_dataset, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    np.save("vecs.npy", tiny_dataset.vectors)
    np.save("q.npy", tiny_dataset.vectors[:2])
    assert main(["build", "vecs.npy", "--quiet", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    assert main([*command.split(), "--data-dir", str(data_dir)]) == 0
    after = capsys.readouterr().out
    assert main(["--data-dir", str(data_dir), *command.split()]) == 0
    assert capsys.readouterr().out.split("\n")[:2] == after.split("\n")[:2]  # same answer; timings may differ below
    assert not (tmp_path / "vecdial-data").exists()  # the default directory was never used


def test_a_missing_collection_names_the_directory_looked_in_and_what_it_holds(capsys, tmp_path, data_dir, tiny_dataset, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("vecs.npy", tiny_dataset.vectors)
    main(["--data-dir", "data", "build", "vecs.npy", "--quiet"])
    code, _, err = run(capsys, "data", "search", "-c", "vec", "--vector", "vecs.npy")
    assert code == 2 and f"no collection 'vec' in the data directory 'data' (--data-dir, relative to {tmp_path}); it holds: vecs" in err
    monkeypatch.setenv("VECDIAL_DATA_DIR", str(tmp_path / "elsewhere"))
    assert main(["info", "-c", "vecs"]) == 2
    assert f"the data directory '{tmp_path / 'elsewhere'}' (VECDIAL_DATA_DIR) does not exist" in capsys.readouterr().err


def test_search_json_carries_each_hits_text(capsys, tmp_path, data_dir, tiny_dataset):
    table = pa.table({"id": list(tiny_dataset.ids), "vector": list(np.asarray(tiny_dataset.vectors)), "text": tiny_dataset.texts})
    pq.write_table(table, tmp_path / "docs.parquet")
    run(capsys, data_dir, "build", tmp_path / "docs.parquet", "--quiet")
    np.save(tmp_path / "q.npy", tiny_dataset.vectors[11])
    _, out, _ = run(capsys, data_dir, "search", "-c", "docs", "--vector", tmp_path / "q.npy", "-k", "1", "--json")
    assert json.loads(out)["hits"][0]["text"] == tiny_dataset.texts[11]


@pytest.mark.parametrize(
    "args, says",
    [
        (["search", "-c", "missing", "--vector", "q.npy"], "no collection 'missing': the data directory"),
        (["search", "-c", "../etc", "--vector", "q.npy"], "invalid collection name"),
        (["build", "nothing.npy"], "does not exist"),
        (["build", "bad.npy"], "dtype int64"),
        (["build", "nan.npy"], "NaN"),
        (["build", "empty.npy"], "no vectors"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(capsys, tmp_path, data_dir, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    np.save("bad.npy", np.arange(10).reshape(5, 2))
    np.save("nan.npy", np.full((4, 8), np.nan, dtype=np.float32))
    np.save("empty.npy", np.zeros((0, 8), dtype=np.float32))
    code, out, err = run(capsys, data_dir, *args)
    assert code == 2
    assert err.startswith("vecdial: error:") and says in err and err.count("\n") == 1


def test_wrong_query_dimension_and_budget_are_reported(capsys, tmp_path, data_dir, tiny_dataset):
    np.save(tmp_path / "vecs.npy", tiny_dataset.vectors)
    run(capsys, data_dir, "build", tmp_path / "vecs.npy", "--quiet")
    np.save(tmp_path / "q.npy", np.ones(100, dtype=np.float32))
    code, _, err = run(capsys, data_dir, "search", "-c", "vecs", "--vector", tmp_path / "q.npy")
    assert code == 2 and "query has 100 dimensions, the collection has 384" in err
    np.save(tmp_path / "q.npy", np.ones(384, dtype=np.float32))
    code, _, err = run(capsys, data_dir, "search", "-c", "vecs", "--vector", tmp_path / "q.npy", "-b", "sparse:active=8")
    assert code == 2 and "no sparse codes" in err


def test_eval_without_judged_queries_says_what_to_pass_instead_of_borrowing_the_demos(capsys, tmp_path, data_dir, tiny_dataset):
    np.save(tmp_path / "vecs.npy", tiny_dataset.vectors)
    run(capsys, data_dir, "build", tmp_path / "vecs.npy", "--quiet")
    for extra in ([], ["--queries", "demo"]):
        code, out, err = run(capsys, data_dir, "eval", "-c", "vecs", *extra)
        assert code == 2 and out == "" and "--queries Q.npy" in err
    np.save(tmp_path / "q.npy", tiny_dataset.vectors[:5])
    code, out, _ = run(capsys, data_dir, "eval", "-c", "vecs", "--queries", tmp_path / "q.npy", "-b", "exact")
    assert code == 0 and "exact" in out


def test_eval_prints_quality_per_budget_on_the_demo(capsys, data_dir, demo_dataset):
    assert run(capsys, data_dir, "build", "--demo", "--quiet")[0] == 0
    code, out, _ = run(capsys, data_dir, "eval", "-c", "demo", "-b", "exact", "dense:dim=64")
    assert code == 0
    assert "exact" in out and "dense:dim=64" in out and "nDCG@10" in out


def settings_flags(command: str) -> set[str]:
    """The flags of a subcommand's settings groups."""
    from vecdial.service.cli import _parser

    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    groups = [g for g in subparsers.choices[command]._action_groups if g.title in ("compression settings", "sparse codes")]
    return {flag for group in groups for action in group._group_actions for flag in action.option_strings}


@pytest.mark.parametrize("command", ["build", "reindex"])
def test_build_and_reindex_take_exactly_one_flag_per_settings_knob(command):
    expected = {knob.flag for knob in KNOBS} | {f"--no-{knob.flag[2:]}" for knob in KNOBS if knob.annotation is bool}
    assert settings_flags(command) == expected
    assert {"--rotation", "--dtype", "--block", "--binary-center", "--binary-index", "--sample-size", "--seed"} <= expected
    assert {"--sparse", "--no-sparse", "--max-active", "--hidden-mult"} <= expected


def test_settings_flags_become_the_changes_the_model_takes():
    from vecdial.service.cli import _parser, settings_changes

    args = _parser().parse_args(["reindex", "-c", "x", "--no-binary-center", "--block", "64", "--max-active", "16"])
    assert settings_changes(args) == {"binary_center": False, "block": 64, "sparse": {"max_active": 16}}
    assert settings_changes(_parser().parse_args(["reindex", "-c", "x", "--no-sparse"])) == {"sparse": False}
    assert settings_changes(_parser().parse_args(["reindex", "-c", "x"])) == {}


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--block", "4"], "block=4 is not valid: use a value >= 8"),
        (["--no-sparse", "--max-active", "16"], "switched off but max_active given"),
    ],
)
def test_bad_settings_flags_are_refused_before_the_input_is_read(capsys, data_dir, flags, says):
    code, _, err = run(capsys, data_dir, "build", "never-read.npy", *flags)
    assert code == 2 and says in err


def test_the_old_sparse_k_flag_is_gone(capsys, data_dir):
    with pytest.raises(SystemExit):
        main(["--data-dir", str(data_dir), "build", "--demo", "--sparse-k", "16"])
    assert "unrecognized arguments: --sparse-k" in capsys.readouterr().err


def test_build_over_acknowledged_writes_is_refused_unless_discard_writes(capsys, tmp_path, data_dir, tiny_dataset, outside_vectors):
    import vecdial

    np.save(tmp_path / "vecs.npy", tiny_dataset.vectors)
    assert run(capsys, data_dir, "build", tmp_path / "vecs.npy", "--quiet")[0] == 0
    vecdial.connect(data_dir).open("vecs").upsert([1000], outside_vectors[:1])
    code, _, err = run(capsys, data_dir, "build", tmp_path / "vecs.npy", "--quiet")
    assert code == 2 and "'vecs' has 1 writes since its version v000001" in err and "--discard-writes" in err
    code, out, _ = run(capsys, data_dir, "build", tmp_path / "vecs.npy", "--quiet", "--discard-writes")
    assert code == 0 and "300 vectors of 384 dims -> version v000002" in out


def test_sweep_says_which_calibration_it_used(capsys, tiny_data_dir):
    code, out, _ = run(capsys, tiny_data_dir, "sweep", "-c", "tiny", "-n", "30", "--quiet", "--max-seconds", "5")
    assert code == 0 and "calibrated on pseudo-queries (30 titles, first sentences and spans of stored texts" in out
