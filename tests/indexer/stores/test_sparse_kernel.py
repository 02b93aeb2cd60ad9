"""The compiled postings walk against a brute-force scipy computation, on codes of the real demo vectors.

Codes come from a fixed random projection of the MiniLM demo vectors (ReLU, top
k, sorted): real, skewed unit usage like a trained autoencoder's, without the
cost of training one here.
"""

import threading

import numpy as np
import pytest
import scipy.sparse as sp

from vecdial.indexer.stores.alive import AliveRows
from vecdial.indexer.stores.sparse import SparseIndex, build_postings

HIDDEN, K = 512, 32


def project_codes(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) -> units (n, K) int32 and values (n, K) float32, best first, ReLU zeros kept."""
    proj = np.random.default_rng(seed).normal(size=(x.shape[1], HIDDEN)).astype(np.float32)
    pre = np.maximum(x @ proj, 0)
    units = np.argsort(-pre, axis=1, kind="stable")[:, :K].astype(np.int32)
    return units, np.take_along_axis(pre, units, axis=1).astype(np.float32)


def code_matrix(units: np.ndarray, values: np.ndarray, active: int) -> sp.csr_matrix:
    """Codes truncated to `active` units, rows scaled to unit norm, as a (n, HIDDEN) CSR matrix."""
    n = len(units)
    m = sp.csr_matrix((values[:, :active].ravel(), units[:, :active].ravel(), np.arange(n + 1) * active), shape=(n, HIDDEN))
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ m


@pytest.fixture(scope="module")
def codes(demo_vectors):
    docs, queries = demo_vectors
    return project_codes(docs), project_codes(queries[:60])


@pytest.fixture(scope="module")
def index(codes):
    (units, values), _ = codes
    return SparseIndex.from_codes(units, values, HIDDEN)


def brute_force(codes, active: int, dead: np.ndarray | None = None) -> np.ndarray:
    (units, values), (q_units, q_values) = codes
    scores = (code_matrix(q_units, q_values, active) @ code_matrix(units, values, active).T).toarray()
    scores[scores <= 0] = -np.inf  # only documents sharing a unit are returned
    if dead is not None:
        scores[:, dead] = -np.inf
    return scores.astype(np.float32)


def check_against(expected: np.ndarray, rows: np.ndarray, scores: np.ndarray, keep: int) -> None:
    for q in range(len(rows)):
        want = np.sort(expected[q])[::-1][:keep]
        np.testing.assert_allclose(scores[q], want, rtol=2e-5, atol=1e-6)
        valid = rows[q] >= 0
        assert valid.sum() == np.isfinite(want).sum()
        np.testing.assert_allclose(expected[q, rows[q][valid]], scores[q][valid], rtol=2e-5, atol=1e-6)
        assert len(set(rows[q][valid])) == valid.sum()
        assert np.all(np.diff(scores[q][valid]) <= 0)  # best first


@pytest.mark.parametrize("active", [1, 4, 8, 16, 32])
@pytest.mark.parametrize("keep", [1, 10, 100])
def test_compiled_search_equals_scipy_brute_force_at_every_prefix(codes, index, active, keep):
    _, (q_units, q_values) = codes
    rows, scores, _ = index.search(q_units, q_values, active, keep)
    assert rows.dtype == np.int64 and scores.dtype == np.float32 and rows.shape == (len(q_units), keep)
    check_against(brute_force(codes, active), rows, scores, keep)


@pytest.mark.parametrize("share", [0.1, 0.9])
def test_deleted_documents_are_masked_inside_the_scan(codes, index, share):
    _, (q_units, q_values) = codes
    dead = np.random.default_rng(1).random(index.size) < share
    # The first queries' best documents are dead too: k live hits still come back.
    first, _, _ = index.search(q_units, q_values, 16, 10)
    dead[first[:5].ravel()] = True
    rows, scores, _ = index.search(q_units, q_values, 16, 10, AliveRows(dead))
    assert not dead[rows[rows >= 0]].any()
    check_against(brute_force(codes, 16, dead), rows, scores, 10)


def test_a_prefix_of_the_index_is_the_index_of_truncated_codes(codes, index):
    (units, values), (q_units, q_values) = codes
    small = SparseIndex.from_codes(units[:, :8], values[:, :8], HIDDEN)
    big_rows, big_scores, big_read = index.search(q_units, q_values, 8, 20)
    rows, scores, read = small.search(q_units, q_values, 8, 20)
    np.testing.assert_array_equal(big_rows, rows)
    np.testing.assert_allclose(big_scores, scores, rtol=1e-6)
    assert big_read == read


def test_postings_read_are_the_prefixes_the_query_touches(codes, index):
    _, (q_units, q_values) = codes
    for active in (4, 16):
        _, _, read = index.search(q_units[:1], q_values[:1], active, 10)
        live = q_values[0, :active] > 0
        touched = index.rank_cum[q_units[0, :active][live].astype(np.int64), active].sum()
        assert read == 12 * touched


def test_ties_go_to_the_lower_row_and_padding_follows_the_last_match():
    units = np.array([[0], [0], [0], [1]], dtype=np.int32)
    values = np.ones((4, 1), dtype=np.float32)
    index = SparseIndex.from_codes(units, values, 2)
    rows, scores, _ = index.search(np.array([[0]], dtype=np.int32), np.ones((1, 1), np.float32), 1, 5)
    np.testing.assert_array_equal(rows[0], [0, 1, 2, -1, -1])
    assert np.all(scores[0, :3] == 1.0) and np.all(scores[0, 3:] == -np.inf)


def test_a_query_without_positive_weight_finds_nothing(index):
    rows, scores, read = index.search(np.zeros((1, 4), np.int32), np.zeros((1, 4), np.float32), 4, 3)
    assert np.all(rows == -1) and np.all(scores == -np.inf) and read == 0


def test_memory_mapped_index_answers_as_the_one_in_ram(tmp_path, codes, index):
    (units, values), (q_units, q_values) = codes
    for name, array in build_postings(units, values, HIDDEN).items():
        np.save(tmp_path / name, array)
    mapped = SparseIndex.open(tmp_path, len(units), mmap=True)
    assert isinstance(mapped.docs, np.memmap)
    for got, want in zip(mapped.search(q_units, q_values, 16, 10), index.search(q_units, q_values, 16, 10)):
        np.testing.assert_array_equal(got, want)


def test_concurrent_searches_and_different_sizes_keep_their_scratch_apart(codes, index):
    (units, values), (q_units, q_values) = codes
    small = SparseIndex.from_codes(units[:300], values[:300], HIDDEN)
    want = {id(ix): ix.search(q_units, q_values, 16, 10) for ix in (index, small)}
    failures = []

    def run(ix):
        for _ in range(20):
            got = ix.search(q_units, q_values, 16, 10)
            if not all(np.array_equal(a, b) for a, b in zip(got, want[id(ix)])):
                failures.append(id(ix))

    threads = [threading.Thread(target=run, args=(ix,)) for ix in (index, small, index, small)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda a: a["sparse_docs.npy"].__setitem__(7, 10**6), "a posting names a row outside"),
        (lambda a: a["sparse_docs.npy"].__setitem__(7, -1), "a posting names a row outside"),
        (lambda a: a["sparse_values.npy"].__setitem__(3, np.nan), "not finite"),
        (lambda a: a["sparse_indptr.npy"].__setitem__(5, 10**9), "offsets"),
        (lambda a: a["sparse_values.npy"].__setitem__(3, -0.5), "not positive"),  # would list a row twice
        (lambda a: a["sparse_values.npy"].__setitem__(3, 0.0), "not positive"),
        (lambda a: a["sparse_rank_cum.npy"].__setitem__((HIDDEN - 1, -1), 10**6), "rank counts"),  # reads past the last unit
        (lambda a: a["sparse_rank_cum.npy"].__setitem__((2, 1), -3), "rank counts"),
        (lambda a: a.__setitem__("sparse_rank_cum.npy", a["sparse_rank_cum.npy"][:-1]), "rank counts"),
        (lambda a: a["sparse_inv_norms.npy"].__setitem__((0, 4), np.inf), "norms"),
        (lambda a: a.__setitem__("sparse_inv_norms.npy", a["sparse_inv_norms.npy"][:, :-1]), "norms"),
    ],
)
def test_postings_damaged_on_disk_are_refused_at_open_whatever_the_checksums(tmp_path, codes, damage, says):
    """The compiled walk trusts rows and offsets without bounds checks, and reuses its
    accumulator across queries: damage must stop at open, not corrupt later answers."""
    from vecdial.indexer.errors import CorruptIndex

    (units, values), _ = codes
    arrays = build_postings(units, values, HIDDEN)
    assert SparseIndex.open(_saved(tmp_path / "good", arrays), len(units)).size == len(units)
    damage(arrays)
    with pytest.raises(CorruptIndex, match=says):
        SparseIndex.open(_saved(tmp_path / "bad", arrays), len(units))


def _saved(directory, arrays):
    directory.mkdir()
    for name, array in arrays.items():
        np.save(directory / name, array)
    return directory
