"""One tie policy in every exact kernel: among equal scores the lower row wins, both at the k-th
place and in the order hits are listed (the sparse walk's own test: test_sparse_kernel.py)."""

import numpy as np
import pytest

from vecdial.indexer.stores import kernels
from vecdial.indexer.stores.binary import BinaryStore
from vecdial.indexer.stores.blocks import BlockStore, prefix_sq_norms, split_blocks
from vecdial.indexer.stores.topk import topk


@pytest.fixture(scope="module")
def tied(demo_vectors) -> np.ndarray:
    """200 real demo vectors, row 7 repeated at rows 40, 80, 120, 160; (200, 384) float32."""
    x = np.array(demo_vectors[0][:200], dtype=np.float32)
    x[40::40] = x[7]
    return x


TIES = [7, 40, 80, 120, 160]  # the rows that tie exactly


def store_of(x: np.ndarray, dtype=np.float32) -> BlockStore:
    return BlockStore(split_blocks(x, 32).astype(dtype), prefix_sq_norms(x, 32), x.shape[1])


@pytest.mark.parametrize("k", [2, 5, 7])
def test_the_one_query_scan_keeps_and_lists_the_lower_rows_of_a_tie_even_when_ranges_come_high_first(tied, k):
    """Probed cells come nearest first, not in row order: rows 100.. are scanned before 0..99."""
    starts, stops = np.array([[100, 0]]), np.array([[200, 100]])
    for dtype in (np.float32, np.float16):
        rows, scores, _ = store_of(tied, dtype).scan_ranges(tied[7:8], 384, k, starts, stops)
        assert rows[0, : min(k, 5)].tolist() == TIES[:k] and len(set(scores[0, :5].tolist())) == 1


def test_the_batch_scan_keeps_and_lists_the_lower_rows_of_a_tie(tied):
    rows, _, _ = store_of(tied).scan(tied[[7, 7]], 384, k=3)
    assert rows.tolist() == [TIES[:3], TIES[:3]]


@pytest.mark.parametrize("row_major", [False, True])
def test_rescoring_lists_the_lower_rows_of_a_tie_whatever_the_candidate_order(tied, row_major):
    store = store_of(tied)
    if row_major:
        store.rows = np.ascontiguousarray(store.blocks.transpose(1, 0, 2))
    candidates = np.array([[160, 3, 80, 7, 120, 40]])
    rows, _ = store.best_rows(tied[7:8], candidates, 384, keep=3)
    assert rows.tolist() == [TIES[:3]]


def test_hamming_ranges_keep_and_list_the_lower_rows_of_a_tie(tied):
    codes = np.packbits(tied > 0, axis=1)
    words = np.ascontiguousarray(codes).view(np.uint64)
    rows = np.empty((1, 3), dtype=np.int64)
    scores = np.empty((1, 3), dtype=np.float32)
    kernels.hamming_ranges(words, words[7:8], 384, np.array([[100, 0]]), np.array([[200, 100]]), np.zeros(0, bool), rows, scores)
    assert rows.tolist() == [TIES[:3]]


def test_the_binary_flat_scan_keeps_and_lists_the_lower_rows_of_a_tie(tied):
    codes = np.packbits(tied > 0, axis=1)
    rows, distances = BinaryStore.from_codes(codes).search_one(np.ascontiguousarray(codes[7:8]), 3)
    assert rows.tolist() == [TIES[:3]] and (distances == 0).all()


def test_topk_keeps_and_lists_the_lower_positions_of_a_tie():
    positions, _ = topk(np.array([[1, 5, 5, 5, 2, 5]], dtype=np.float32), 3)
    assert positions.tolist() == [[1, 2, 3]]
