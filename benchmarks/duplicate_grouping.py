"""How long near-duplicate grouping takes as an archive grows: `duplicates.hash_groups` (multi-index hashing over
the distinct hashes, what `medimg audit` and the splits use) against comparing all pairs, on one core.

The hashes are MedNIST's own pHashes and, for archive sizes beyond it, each of them with `--variants` random
variants about 8 bits away (distinct images that look alike, as in a scanner's archive; none within the 4-bit
distance by construction, except by chance). All-pairs is timed up to `--all-pairs-up-to` hashes; above that
it is extrapolated from its square-law growth, and printed as such.

Usage: MEDIMG_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python -m benchmarks.duplicate_grouping [--variants 16]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from medimg_core import get_task
from medimg_core.data.datasets import dataset_path, load_dataset
from medimg_core.data.duplicates import DEFAULT_MAX_DISTANCE, connected_groups, hamming, hash_groups, perceptual_hashes


def all_pairs_groups(hashes: np.ndarray, max_distance: int, rows: int = 64) -> np.ndarray:
    """The groups by comparing every pair, `rows` hashes against all at a time (the method hash_groups replaced)."""
    found_i, found_j = [], []
    for start in range(0, len(hashes), rows):
        ii, jj = np.nonzero(hamming(hashes[start : start + rows, None], hashes[None, :]) <= max_distance)
        found_i.append(ii + start)
        found_j.append(jj)
    return connected_groups(len(hashes), np.concatenate(found_i), np.concatenate(found_j))


def variants(hashes: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """The hashes followed by n variants of each with about 8 of 64 bits flipped (an AND of three random words)."""
    rng = np.random.default_rng(seed)

    def sparse_word() -> np.ndarray:
        """One random word per hash with about 1 bit in 8 set."""
        return np.bitwise_and.reduce([rng.integers(0, 2**63, len(hashes), dtype=np.uint64) for _ in range(3)])

    return np.concatenate([hashes] + [hashes ^ sparse_word() for _ in range(n)])


def timed(fn, *args) -> tuple[float, np.ndarray]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    """Print seconds per method and archive size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=16, help="variants per MedNIST hash for the largest size")
    parser.add_argument("--all-pairs-up-to", type=int, default=60_000, help="largest size timed by all pairs")
    args = parser.parse_args()
    spec = get_task("modality")
    images = load_dataset(spec, dataset_path(spec)).images
    seconds, mednist = timed(perceptual_hashes, images)
    print(f"pHash of {len(mednist):,} MedNIST images: {seconds:.1f} s")
    print(f"{'hashes':>10} {'distinct':>10} {'groups':>10} {'hash_groups':>12} {'all pairs':>22}")
    pair_rate = None
    for copies in sorted({0, 1, 3, args.variants}):
        hashes = variants(mednist, copies)
        seconds, groups = timed(hash_groups, hashes, DEFAULT_MAX_DISTANCE)
        if len(hashes) <= args.all_pairs_up_to:
            pair_seconds, expected = timed(all_pairs_groups, hashes, DEFAULT_MAX_DISTANCE)
            assert len(np.unique(expected)) == groups.max() + 1, "hash_groups and all pairs disagree"
            pair_rate, pairs = pair_seconds / len(hashes) ** 2, f"{pair_seconds:.1f} s"
        else:
            pairs = f"~{pair_rate * len(hashes) ** 2:.0f} s (extrapolated)" if pair_rate else "-"
        print(f"{len(hashes):>10,} {len(np.unique(hashes)):>10,} {groups.max() + 1:>10,} {seconds:>10.1f} s {pairs:>22}")


if __name__ == "__main__":
    main()
