"""The example scans that ship with the app (`assets/examples/`), read per task and class.

A task's examples live in `assets/examples/<task>/<class>/<file>`: the folder names the class, and
the file keeps the stem of the original image in its dataset, so the same image in a downloaded
dataset is recognised (`add_pool`). Only MedNIST images ship (`assets/examples/README.md` holds
their source, licence and original names); a task without a folder has no examples.
Not here: the downloaded dataset's example pool (`class_examples.validation_pool`) or any drawing.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import numpy as np

from .imaging import read_image, to_model_input, to_uint8
from .shipped import assets_root
from ..tasks import TaskSpec

EXAMPLES_DIR = assets_root() / "examples"  # the checkout's assets/examples, or the installed package's
ATTRIBUTION = EXAMPLES_DIR / "README.md"  # source, licence and original file name of every shipped example
Pool = dict[str, tuple[np.ndarray, list[str]]]  # class -> (N x S x S uint8 images, N file names)


def read_examples(spec: TaskSpec, folder: Path = EXAMPLES_DIR) -> Pool:
    """Per class of the task: its shipped example scans, as the model reads them, and their names.

    Args:
        spec: the task; its classes name the folders read, its image size the output size.
        folder: the examples folder (holding one folder per task).
    Returns:
        class -> (N x S x S uint8 images at the task's input size, N names `<task>/<class>/<file>`),
        in file-name order, for the classes that have examples ({} for a task without any).
    Raises:
        ImageReadError: a file in a class folder is not a readable image.
    """
    pool: Pool = {}
    for name in spec.classes:
        files = sorted(p for p in (folder / spec.name / name).glob("*") if p.is_file())
        if files:
            images = [to_uint8(to_model_input(read_image(p), spec.image_size, spec.native_size, spec.fit)) for p in files]
            pool[name] = (np.stack(images), [p.relative_to(folder).as_posix() for p in files])
    return pool


def add_pool(examples: Mapping[str, tuple[np.ndarray, list[str]]],
             pool: Mapping[str, tuple[np.ndarray, list[str]]]) -> Pool:
    """Per class: the shipped examples first, then the pool's images that are not among them.

    A pool image is the same as an example when its file stem matches one of the class's examples
    (the examples keep their original stem), so a downloaded dataset does not show them twice.
    The images of both must have the same size.
    """
    out: Pool = {}
    for name in dict.fromkeys([*examples, *pool]):
        images, files = examples.get(name, (None, []))
        more, more_files = pool.get(name, (None, []))
        shipped = {PurePosixPath(f).stem for f in files}
        keep = [i for i, f in enumerate(more_files) if PurePosixPath(f).stem not in shipped]
        parts = [a for a in (images, None if more is None else more[keep]) if a is not None]
        out[name] = (np.concatenate(parts), [*files, *(more_files[i] for i in keep)])
    return out
