"""Readable, steerable sparse features on the demo corpus: labels, and what steering does.

Trains the collection's sparse autoencoder exactly as a build does (``build_sparse`` with
the build's default settings, into a temporary directory), reads the codes back from the
postings it wrote, labels every unit (``indexer/features``) and prints:

- live units, the share of distinct labels, how long labelling took;
- 15 example labels with their top documents' first words;
- what a few label queries resolve to, and one query's shared features per hit;
- the steering effect: for 20 features active in 0.5-5% of documents, over the 1,000 demo
  queries, the share of exact top-10 hits with the feature active at each weight, how much
  of the unsteered top 10 is kept, how far the kept hits move (mean |rank change|), how
  often the first hit changes, and the mean change of the hits' cosine to the unsteered
  query (what steering costs in plain relevance).

    .venv/bin/python -m bench.features_report [--quick]   # --quick: the tests' small autoencoder
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vecdial import SparseSettings
from vecdial._internal import (
    FeatureTable,
    build_sparse,
    codes_from_postings,
    demo_embeddings,
    feature_table,
    find_features,
    hit_codes_from_postings,
    load_decoder,
    load_demo_corpus,
    query_code,
    shared_features,
    steer,
)

WEIGHTS = (-0.3, 0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
LABEL_QUERIES = ("json", "thread", "date", "socket", "pars")


def first_words(text: str, n: int = 4) -> str:
    return " ".join(text.split()[:n])


def steering_effect(
    table: FeatureTable, active: np.ndarray, decoder: np.ndarray, docs: np.ndarray, queries: np.ndarray, features: int = 20
) -> list[tuple]:
    """Rows (weight, share of hits with the feature active, top-10 kept, mean |rank change| of
    the kept hits, share of queries whose first hit changed, mean cosine change)."""
    live = table.live_units
    freq = table.frequency[live]
    units = np.random.default_rng(0).choice(live[(freq > 0.005) & (freq < 0.05)], features, replace=False)
    base_scores = queries @ docs.T
    base_top = np.argsort(-base_scores, axis=1)[:, :10]
    base_mean = np.take_along_axis(base_scores, base_top, 1).mean()
    rows = []
    for weight in WEIGHTS:
        share, kept, moved, first, change = [], [], [], [], []
        for unit in units.tolist():
            top = np.argsort(-(steer(queries, {unit: weight}, decoder) @ docs.T), axis=1)[:, :10]
            share.append(active[top, unit].mean())
            kept.append(np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(top, base_top)]))
            for a, b in zip(top.tolist(), base_top.tolist()):
                moved.extend(abs(a.index(row) - b.index(row)) for row in set(a) & set(b))
            first.append(np.mean(top[:, 0] != base_top[:, 0]))
            change.append(np.take_along_axis(base_scores, top, 1).mean() - base_mean)
        rows.append(
            (weight, float(np.mean(share)), float(np.mean(kept)), float(np.mean(moved)), float(np.mean(first)), float(np.mean(change)))
        )
    return rows


def explain_one(out: Path, arrays: dict, table: FeatureTable, docs: np.ndarray, query: np.ndarray) -> tuple:
    """One query's exact top 3 and, per hit, the features it shares with the query."""
    from vecdial._internal import SparseAutoencoder

    model = SparseAutoencoder.load(out)
    units, weights = model.encode_topk(query[None, :], threads=1)
    rows = np.argsort(-(docs @ query))[:3]
    hits = hit_codes_from_postings(arrays["indptr"], arrays["docs"], arrays["values"], units[0], rows)
    return rows, shared_features(query_code(units[0], weights[0], model.hidden), hits, table, top=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="768 units, 16 active (the tests' autoencoder) instead of the build default")
    args = parser.parse_args()
    corpus = load_demo_corpus()
    docs, queries = demo_embeddings(show_progress=False)
    settings = SparseSettings(max_active=16, hidden_mult=2) if args.quick else SparseSettings()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        entry = build_sparse(docs, docs, out, settings, show_progress=False, threads=1)
        trained = time.perf_counter() - t0
        arrays = {name: np.load(out / f"sparse_{name}.npy") for name in ("indptr", "docs", "values")}
        t0 = time.perf_counter()
        codes = codes_from_postings(arrays["indptr"], arrays["docs"], arrays["values"], len(docs))
        table = feature_table(codes, corpus.doc_texts)
        labelled = time.perf_counter() - t0
        files = table.save(out / "features")
        size = sum((out / "features" / name).stat().st_size for name in files)
        decoder = load_decoder(out)
        explained_rows, explained = explain_one(out, arrays, table, docs, queries[0])
    model = entry["model"]
    live = table.live_units
    print(
        f"demo corpus: {len(docs)} documents x {docs.shape[1]} dims; autoencoder {model['hidden']} units, "
        f"{model['k']} active, trained in {trained:.0f} s ({entry['train']['epochs']} epochs, val nmse {entry['train']['val_nmse']})"
    )
    print(
        f"live units: {len(live)} of {table.units} ({table.dead.sum()} dead); distinct labels: "
        f"{table.distinct_label_share():.3f} of live units; labelled in {labelled:.2f} s; table files {size / 1024:.0f} KB"
    )
    print("\n15 example features (unit, share of documents active, label | top documents' first words):")
    for unit in np.sort(np.random.default_rng(1).choice(live, 15, replace=False)).tolist():
        rows, _ = table.top_documents(unit)
        shown = "; ".join(first_words(corpus.doc_texts[r]) for r in rows[:3].tolist())
        print(f"  {unit:5d} {table.frequency[unit]:6.1%}  {table.label(unit):<48.48s} | {shown}")
    print("\nlabel queries -> features:")
    for text in LABEL_QUERIES:
        found = find_features(table, text, limit=3).tolist()
        print(f"  {text!r:9s} -> " + ("; ".join(f"{u}: {table.label(u)}" for u in found) or "none"))
    print(f"\nwhy hits match, in features: query {corpus.query_texts[0]!r}")
    for row, features in zip(explained_rows.tolist(), explained):
        listed = ", ".join(f"[{f.label}] {f.contribution:.3f}" for f in features[:3])
        print(f"  {corpus.doc_ids[row]:<36.36s} {listed}")
    print("\nsteering (20 features active in 0.5-5% of documents, 1,000 queries, exact top 10):")
    print(
        f"  {'weight':>6s}  {'hits with feature':>17s}  {'top-10 kept':>11s}  {'kept hits moved':>15s}  {'first hit changed':>17s}  {'mean cosine change':>18s}"
    )
    active = codes.toarray() > 0
    for weight, share, kept, moved, first, change in steering_effect(table, active, decoder, docs, queries):
        print(f"  {weight:6.2f}  {share:17.3f}  {kept:11.3f}  {moved:15.2f}  {first:17.3f}  {change:+18.4f}")


if __name__ == "__main__":
    main()
