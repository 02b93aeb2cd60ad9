"""`vecdial search --filter/--with-payload`, payload columns of Parquet and JSONL inputs, and a bad
filter as one error line with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vecdial.service.cli import main


def run(capsys, data_dir, *args) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data_dir), *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_parquet_columns_become_payloads_a_search_filters_on(capsys, tmp_path, tiny_dataset):
    n = 300
    table = pa.table(
        {
            "id": list(range(n)),
            "vector": [row.tolist() for row in np.asarray(tiny_dataset.vectors)],
            "team": ["red" if i % 10 == 0 else "blue" for i in range(n)],
            "rank": list(range(n)),
            "tags": [["even"] if i % 2 == 0 else [] for i in range(n)],
        }
    )
    pq.write_table(table, tmp_path / "items.parquet")
    assert run(capsys, tmp_path, "build", tmp_path / "items.parquet", "--quiet")[0] == 0
    np.save(tmp_path / "q.npy", np.asarray(tiny_dataset.vectors[7]))
    code, out, _ = run(
        capsys,
        tmp_path,
        "search",
        "-c",
        "items",
        "--vector",
        tmp_path / "q.npy",
        "-k",
        "5",
        "--json",
        "--with-payload",
        "--filter",
        '{"team": "red", "rank": {"range": {"gte": 100}}}',
    )
    body = json.loads(out)
    assert code == 0 and len(body["hits"]) == 5
    assert all(hit["payload"]["team"] == "red" and hit["payload"]["rank"] >= 100 and hit["id"] % 10 == 0 for hit in body["hits"])
    assert body["explain"]["filter"]["matched_rows"] == 20


def test_the_demo_build_has_payloads_and_the_table_shows_them(capsys, tmp_path, demo_vectors):
    assert run(capsys, tmp_path, "build", "--demo", "--quiet")[0] == 0
    np.save(tmp_path / "q.npy", np.asarray(demo_vectors[1][0]))
    code, out, _ = run(
        capsys,
        tmp_path,
        "search",
        "-c",
        "demo",
        "--vector",
        tmp_path / "q.npy",
        "-k",
        "3",
        "--filter",
        '{"module": "json"}',
        "--with-payload",
    )
    assert code == 0 and '"module": "json"' in out and "items matched, applied by rows" in out


def test_a_bad_filter_is_one_error_line_and_exit_code_2(capsys, tmp_path, tiny_dataset):
    np.save(tmp_path / "vecs.npy", np.asarray(tiny_dataset.vectors))
    run(capsys, tmp_path, "build", tmp_path / "vecs.npy", "--quiet")
    np.save(tmp_path / "q.npy", np.asarray(tiny_dataset.vectors[0]))
    code, _, err = run(capsys, tmp_path, "search", "-c", "vecs", "--vector", tmp_path / "q.npy", "--filter", '{"team": "red"}')
    assert code == 2 and err.strip().splitlines() == [
        "vecdial: error: filter: unknown payload field 'team' (fields: none: this collection holds no payloads)"
    ]


def test_a_filter_that_is_not_json_is_a_usage_error(capsys, tmp_path):
    try:
        main(["--data-dir", str(tmp_path), "search", "-c", "x", "--text", "q", "--filter", "{team: red}"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "--filter: not JSON" in capsys.readouterr().err
