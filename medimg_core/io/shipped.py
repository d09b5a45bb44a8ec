"""Where the shipped files live: models and cards, embedding maps, example scans (package data).

The repository keeps them in `assets/` beside the packages; a wheel carries the same folder inside the
package, as `medimg_core/assets/` (pyproject.toml maps it there), so an installed copy finds them through
`importlib.resources` without the checkout. `$MEDIMG_MODELS_DIR` and `$MEDIMG_EMBEDDINGS_DIR` still name
other folders (models.checkpoint.models_dir, reports.embed.shipped_embedding_path). Not here: reading or writing them.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

CHECKOUT_ASSETS = Path(__file__).resolve().parents[2] / "assets"  # a checkout or an editable install


def assets_root() -> Path:
    """The shipped assets folder: the package's own `assets/` in an installed wheel, else the checkout's."""
    packaged = Path(str(resources.files("medimg_core") / "assets"))
    return packaged if packaged.is_dir() else CHECKOUT_ASSETS


def is_shipped(path: Path, also: tuple[Path, ...] = ()) -> bool:
    """Whether a file lies in the shipped assets (or in one of the folders `also` names, e.g. $MEDIMG_MODELS_DIR)."""
    where = Path(path).expanduser().resolve()
    return any(where.is_relative_to(Path(root).expanduser().resolve()) for root in (assets_root(), *also))
