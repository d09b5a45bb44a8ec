"""Exact and near-duplicate images: perceptual hashes and groups within a Hamming distance (the report is in
duplicate_report.py).

A dataset can repeat an image byte for byte, or as a re-encoded, rescaled or slightly cropped copy
(the brain tumour MRI set repeats images between its Training and Testing folders and within
Training). Exact duplicates share their pixels; near-duplicates share their perceptual hash (pHash,
`imagehash.phash`: the signs of the lowest 8 x 8 DCT coefficients of a 32 x 32 thumbnail against
their median) up to a few of its 64 bits. Groups are the connected components of "within
max_distance bits", so a chain of near copies is one group. `splits.split_train_val` keeps a group on
one side of the validation split. This module reads no files: it works on the uint8 image stacks a
Dataset holds (N x S x S).
"""
from __future__ import annotations

import hashlib

import numpy as np

DEFAULT_MAX_DISTANCE = 4  # of 64 pHash bits: re-encoded or resized copies land within 0-2, unrelated scans near 32
HASH_BITS = 64
PART_NAMES = {"training": "train", "train": "train", "testing": "test", "test": "test", "validation": "val", "val": "val"}


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Group id per image; images with identical pixels share one id (ids in order of first appearance)."""
    seen: dict[bytes, int] = {}
    return np.array([seen.setdefault(hashlib.md5(im.tobytes()).digest(), len(seen)) for im in images], np.int64)


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """64-bit pHash (imagehash.phash) of each image of an N x H x W uint8 stack, as N uint64.

    The bits are packed in imagehash's order, so `f"{h:016x}"` is imagehash's hex string.
    """
    import imagehash
    from PIL import Image

    bits = np.stack([imagehash.phash(Image.fromarray(im)).hash.reshape(-1) for im in images]) if len(images) else \
        np.zeros((0, HASH_BITS), bool)
    return np.packbits(bits, axis=1).view(">u8").reshape(-1).astype(np.uint64)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Number of differing bits between 64-bit hashes (broadcast like a ^ b)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))


def near_pairs(hashes: np.ndarray, max_distance: int = DEFAULT_MAX_DISTANCE,
               block: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of every pair i < j whose hashes differ in at most max_distance bits.

    Compares all pairs in blocks of about `block` hashes at a time (55,000 images: about 1.5e9 pairs,
    seconds on a CPU, tens of MB of memory).
    """
    if not 0 <= max_distance <= HASH_BITS:
        raise ValueError(f"max_distance must be between 0 and {HASH_BITS} bits, not {max_distance}")
    hashes = np.asarray(hashes, np.uint64)
    n = len(hashes)
    rows = max(1, block // max(n, 1))
    found_i, found_j, found_d = [], [], []
    for start in range(0, n, rows):
        d = hamming(hashes[start : start + rows, None], hashes[None, start:])  # columns from `start`: each pair once
        ii, jj = np.nonzero(d <= max_distance)
        later = jj > ii
        found_i.append(ii[later] + start)
        found_j.append(jj[later] + start)
        found_d.append(d[ii[later], jj[later]])
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d).astype(np.uint8)


def connected_groups(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Group id per item 0..n-1 when each pair (i[k], j[k]) joins two items (ids in order of first appearance)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def near_duplicate_groups(images: np.ndarray, max_distance: int = DEFAULT_MAX_DISTANCE) -> np.ndarray:
    """Group id per image: images whose pHashes are within max_distance bits (directly or through a chain)
    share one id; identical images always do."""
    i, j, _ = near_pairs(perceptual_hashes(images), max_distance)
    return connected_groups(len(images), i, j)


def group_counts(groups: np.ndarray) -> tuple[int, int]:
    """(groups of more than one image, images in them)."""
    sizes = np.bincount(groups) if len(groups) else np.zeros(0, np.int64)
    return int((sizes > 1).sum()), int(sizes[sizes > 1].sum())


def near_duplicate_summary(images: np.ndarray, max_distance: int) -> dict:
    """What a model card records of the near-duplicates its split kept together: max_distance, groups, images."""
    groups, members = group_counts(near_duplicate_groups(images, max_distance))
    return {"max_distance": max_distance, "groups": groups, "images": members}
