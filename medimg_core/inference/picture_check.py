"""No scan, no label: a cheap check that refuses pictures with no scan in them, before any model sees them.

`not_a_scan(image)` looks at a read_image output (HxW float32 in [0, 1]) and returns one plain sentence
when the picture cannot be a scan of any kind (None when it can):

- blank or constant (one value everywhere, a flat colour), near-constant (its values span almost nothing);
- too small to show anything (under MIN_SIDE pixels on a side);
- random noise (uniform, gaussian, salt and pepper): neighbouring pixels, and neighbouring blocks of pixels,
  are unrelated, unlike in any image of a body;
- two-tone pictures (checkerboards, stripes, masks, drawings, black-and-white documents): almost every pixel
  is the darkest or the lightest shade;
- gradients: between the darkest and lightest shades the picture changes only in flat steps or straight ramps,
  without the fine texture every scan, photo or film has.

It is a check of the picture, not of its kind: a photo, a grey-scale document or a brain MRI passes (telling them
from a task's classes is the model's rejection rule), and so do pictures of flat blocks and discs, which some
real MedNIST slices (a bright ellipse on grey) resemble too closely. It runs on every k-th pixel of every k-th
row (at most WORK_SIDE pixels a side) in well under a millisecond for a 64-pixel image and a few for a large one.
`benchmarks/picture_check.py` measures it: on the project's real images (scan-kinds' six kinds and 36 datasets of
other kinds, MedNIST, the brain tumour and pneumonia X-ray archives) it refuses only MedNIST's all-grey HeadCT
frames and four black-and-white text documents. The nearest real images to each threshold: spread 0.15 (against
0.06), noise correlation 0.33 (against 0.2; a grainy MedNIST chest CT), mid-tones 0.057 (against 0.02; a text
document), texture 0.064 (against 0.03; a MedNIST HeadCT ellipse).
"""
from __future__ import annotations

import numpy as np

WORK_SIDE = 256  # larger pictures are subsampled down to at most this side
MIN_SIDE = 8  # smaller pictures cannot show a scan
LEVEL = 1.0 / 255.0  # one shade of an 8-bit picture
NEAR_CONSTANT = 0.06  # the middle 99% of values spans less than this: almost uniform (real scans: 0.15 and more)
NOISE_CORRELATION = 0.2  # neighbouring pixels (and neighbouring 4 x 4 blocks) correlate less than this: noise
FAINT = 0.12  # a picture this faint whose blocks are unrelated is faint noise (a blank frame saved as JPEG)
EXTREME_MARGIN = 4 * LEVEL  # a pixel within this of the darkest (lightest) value counts as the darkest (lightest)
MIN_MID_TONES = 0.02  # fewer pixels than this fraction between the darkest and lightest shades: two-tone
TEXTURE_STEP = 2.5 * LEVEL  # a pixel whose second differences add up to more than this is textured
MIN_TEXTURE = 0.03  # fewer textured pixels than this fraction of the mid-tones: flat steps and ramps only


def not_a_scan(image: np.ndarray) -> str | None:
    """Why the picture cannot be a scan, in one sentence; None when it could be one.

    Args:
        image: HxW float array in [0, 1] (as read_image returns it).
    Returns:
        a sentence such as "The picture looks like random noise: ...", or None.
    """
    h, w = image.shape
    if min(h, w) < MIN_SIDE:
        return f"The picture is only {w} x {h} pixels, too small to show a scan."
    work = subsample(image, WORK_SIDE).astype(np.float32, copy=False)
    low, high = float(work.min()), float(work.max())
    if high - low < LEVEL / 2:  # the subsample may have missed a few pixels: look at them all
        low, high = float(image.min()), float(image.max())
        if high - low < LEVEL / 2:
            return f"The picture is blank: every pixel has the same brightness ({describe_shade(low)})."
    p_low, p_high = percentiles(work, 0.005, 0.995)
    if p_high - p_low < NEAR_CONSTANT:
        return (f"The picture is almost uniform: 99% of its pixels lie within {(p_high - p_low) * 100:.1f}% of the "
                "brightness range, so there is no scan in it.")
    fine, coarse = noise_correlation(work)
    if max(fine, coarse) < NOISE_CORRELATION or (p_high - p_low < FAINT and coarse < NOISE_CORRELATION):
        return ("The picture looks like random noise: neighbouring pixels are unrelated, while every scan "
                "changes smoothly from pixel to pixel.")
    mid = (work > low + EXTREME_MARGIN) & (work < high - EXTREME_MARGIN)
    if mid.mean() < MIN_MID_TONES:
        return ("Almost every pixel of the picture is either its darkest or its lightest shade: a pattern, a mask, "
                "a drawing or a black-and-white document (such as a checkerboard or stripes), not a scan.")
    if textured_fraction(work, mid) < MIN_TEXTURE:
        return ("The picture changes only in flat steps or smooth ramps (a gradient or a drawn pattern), without "
                "the fine texture of a scan.")
    return None


def describe_shade(value: float) -> str:
    """A [0, 1] grey value in words: "black", "white" or "40% grey"."""
    if value <= LEVEL / 2:
        return "black"
    if value >= 1 - LEVEL / 2:
        return "white"
    return f"{value:.0%} grey"


def percentiles(image: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The values below which the fractions `low` and `high` of the pixels lie (a partial sort: cheap)."""
    flat = image.ravel()
    k = (int(low * (flat.size - 1)), int(high * (flat.size - 1)))
    part = np.partition(flat, k)
    return float(part[k[0]]), float(part[k[1]])


def subsample(image: np.ndarray, side: int) -> np.ndarray:
    """Every k-th pixel of every k-th row, k the smallest whole step that brings the image to at most `side` pixels
    a side. Unlike averaging it keeps the values exact: a two-tone picture stays two-tone, noise stays noise."""
    step = -(-max(image.shape) // side)
    return image[::step, ::step] if step > 1 else image


def block_average(image: np.ndarray, side: int) -> np.ndarray:
    """The image shrunk by the smallest whole factor that brings it to at most `side` pixels a side (block means)."""
    factor = -(-max(image.shape) // side)
    if factor <= 1:
        return image
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    return image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean((1, 3), dtype=np.float32)


def noise_correlation(image: np.ndarray) -> tuple[float, float]:
    """How far from random noise the picture is: its neighbour correlation at the scale of a pixel and at the scale
    of 4 x 4 blocks (2 x 2 for small pictures). Noise is near 0 at both (JPEG smooths it at the pixel only); a real
    scan is above 0.3 at one of them at least (a noisy CT slice, grainy at the pixel, shows its body in blocks)."""
    factor = 4 if min(image.shape) >= 64 else 2
    coarse = block_average(image, -(-max(image.shape) // factor)) if min(image.shape) >= 8 * factor else image
    return neighbour_correlation(image), neighbour_correlation(coarse)


def neighbour_correlation(image: np.ndarray) -> float:
    """The picture's lag-one autocorrelation, right and down neighbours together (1 = smooth, 0 = noise)."""
    x = image - image.mean(dtype=np.float32)
    energy = float(np.vdot(x, x)) / x.size
    if energy <= 0:
        return 1.0
    right = float((x[:, :-1] * x[:, 1:]).sum()) / max(x[:, 1:].size, 1)
    down = float((x[:-1] * x[1:]).sum()) / max(x[1:].size, 1)
    return (right + down) / 2 / energy


def textured_fraction(image: np.ndarray, mask: np.ndarray) -> float:
    """The fraction of the masked pixels (inner ones only) whose horizontal and vertical second differences add
    up to more than TEXTURE_STEP: pixels that are neither on a flat patch nor on a straight ramp."""
    inner = image[1:-1, 1:-1]
    d2 = np.abs(image[1:-1, :-2] - 2 * inner + image[1:-1, 2:]) + np.abs(image[:-2, 1:-1] - 2 * inner + image[2:, 1:-1])
    inside = mask[1:-1, 1:-1]
    return float((d2[inside] > TEXTURE_STEP).mean()) if inside.any() else 0.0
