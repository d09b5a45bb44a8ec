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
HASH_SIDE, HIGHFREQ_FACTOR = 8, 4  # imagehash.phash's defaults: 8 x 8 bits from a 32 x 32 thumbnail
PART_NAMES = {"training": "train", "train": "train", "testing": "test", "test": "test", "validation": "val", "val": "val"}


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Group id per image; images with identical pixels share one id (ids in order of first appearance)."""
    seen: dict[bytes, int] = {}
    return np.array([seen.setdefault(hashlib.md5(im.tobytes()).digest(), len(seen)) for im in images], np.int64)


def perceptual_hashes(images: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """64-bit pHash (imagehash.phash) of each image of an N x H x W uint8 stack (or a list of H x W uint8 arrays of
    any sizes), as N uint64.

    imagehash's own steps (a 32 x 32 Lanczos thumbnail, scipy's DCT down the columns then along the rows, the
    lowest 8 x 8 coefficients against their median), with the DCTs and medians taken over `chunk` thumbnails at
    once: the same bits as `imagehash.phash` (the same transform per thumbnail), about twice as fast as one call
    per image. The bits are packed in imagehash's order, so `f"{h:016x}"` is imagehash's hex string.
    """
    import scipy.fftpack
    from PIL import Image

    side, low = HASH_SIDE * HIGHFREQ_FACTOR, HASH_SIDE
    packed = []
    for start in range(0, len(images), chunk):
        thumbs = np.stack([np.asarray(Image.fromarray(im).convert("L").resize((side, side), Image.Resampling.LANCZOS))
                           for im in images[start:start + chunk]])
        dct = scipy.fftpack.dct(scipy.fftpack.dct(thumbs, axis=1), axis=2)[:, :low, :low].reshape(len(thumbs), -1)
        packed.append(np.packbits(dct > np.median(dct, axis=1, keepdims=True), axis=1))
    bits = np.concatenate(packed) if packed else np.zeros((0, HASH_BITS // 8), np.uint8)
    return bits.view(">u8").reshape(-1).astype(np.uint64)


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Number of differing bits between 64-bit hashes (broadcast like a ^ b)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))


def near_pairs(hashes: np.ndarray, max_distance: int = DEFAULT_MAX_DISTANCE,
               block: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of every pair i < j whose hashes differ in at most max_distance bits.

    Multi-index hashing (Norouzi et al. 2012): cut the 64 bits into max_distance + 1 pieces; two hashes
    within max_distance bits agree exactly on at least one piece (pigeonhole), so only hashes that share a
    piece are compared, `block` candidate pairs at a time. A pair that agrees on several pieces is counted at
    the first. Near-linear in the number of hashes for hashes spread like pHashes of distinct images
    (1,000,000 in tens of seconds), where comparing all pairs grows with its square.
    """
    if not 0 <= max_distance <= HASH_BITS:
        raise ValueError(f"max_distance must be between 0 and {HASH_BITS} bits, not {max_distance}")
    hashes = np.asarray(hashes, np.uint64)
    cuts = np.linspace(0, HASH_BITS, max_distance + 2).astype(np.uint64)
    pieces = [(hashes >> lo) & np.uint64((1 << int(hi - lo)) - 1) for lo, hi in zip(cuts[:-1], cuts[1:])] \
        if max_distance < HASH_BITS else [np.zeros_like(hashes)]  # 64 bits apart: every pair
    found = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    for k, piece in enumerate(pieces):
        for i, j in same_key_pairs(piece, block):
            keep = hamming(hashes[i], hashes[j]) <= max_distance
            for earlier in pieces[:k]:  # found already at an earlier piece
                keep &= earlier[i] != earlier[j]
            found.append((i[keep], j[keep]))
    i, j = np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
    i, j = np.minimum(i, j), np.maximum(i, j)
    order = np.lexsort((j, i))
    i, j = i[order], j[order]
    return i, j, hamming(hashes[i], hashes[j]).astype(np.uint8)


def same_key_pairs(keys: np.ndarray, block: int):
    """Every pair (i, j) of positions whose keys are equal, about `block` pairs per yield."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.repeat(np.r_[starts[1:], len(keys)], np.diff(np.r_[starts, len(keys)]))
    partners = ends - np.arange(len(keys)) - 1  # later positions of the same key
    total = np.cumsum(partners)
    first = 0
    while first < len(keys):
        last = max(first + 1, int(np.searchsorted(total, (total[first - 1] if first else 0) + block, "right")))
        count = partners[first:last]
        left = np.repeat(np.arange(first, last), count)
        offset = np.arange(len(left)) - np.repeat(np.cumsum(count) - count, count) + 1
        if len(left):
            yield order[left], order[left + offset]
        first = last


def connected_groups(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Group id per item 0..n-1 when each pair (i[k], j[k]) joins two items (ids in order of first appearance)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def hash_groups(hashes: np.ndarray, max_distance: int = DEFAULT_MAX_DISTANCE) -> np.ndarray:
    """Group id per hash: hashes within max_distance bits (directly or through a chain) share one id, equal
    hashes always do (ids in order of first appearance). Pairs are sought among the distinct hashes only,
    so a thousand copies of one frame cost one hash, not half a million pairs."""
    distinct, inverse = np.unique(np.asarray(hashes, np.uint64), return_inverse=True)
    i, j, _ = near_pairs(distinct, max_distance)
    groups = connected_groups(len(distinct), i, j)[inverse.reshape(-1)]
    _, first, renumbered = np.unique(groups, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[renumbered.reshape(-1)].astype(np.int64)


def near_duplicate_groups(images: np.ndarray, max_distance: int = DEFAULT_MAX_DISTANCE) -> np.ndarray:
    """Group id per image: images whose pHashes are within max_distance bits (directly or through a chain)
    share one id; identical images always do."""
    return hash_groups(perceptual_hashes(images), max_distance)


def group_counts(groups: np.ndarray) -> tuple[int, int]:
    """(groups of more than one image, images in them)."""
    sizes = np.bincount(groups) if len(groups) else np.zeros(0, np.int64)
    return int((sizes > 1).sum()), int(sizes[sizes > 1].sum())


def near_duplicate_summary(images: np.ndarray, max_distance: int) -> dict:
    """What a model card records of the near-duplicates its split kept together: max_distance, groups, images."""
    groups, members = group_counts(near_duplicate_groups(images, max_distance))
    return {"max_distance": max_distance, "groups": groups, "images": members}
