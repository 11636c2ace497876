"""Files the installed package needs at run time, found the same way from a wheel and a checkout.

- The default model: ``--model DIR`` where a command takes it, else the directory in the
  ``RUPTURE_MODEL`` setting, else the copy shipped in the package
  (``rupture_nlp/data/models/rupture-3rs-minilm``, packaged from the checkout's ``models/``; see
  ``setup.py``), else a source checkout's ``models/rupture-3rs-minilm``.
- The Label Studio server script ships as ``rupture_nlp/data/labelstudio.sh``
  (``scripts/labelstudio.sh`` in a checkout only hands over to it). Its virtualenv and data live
  in ``RUPTURE_LABELSTUDIO_HOME`` (``.venv-labelstudio/``, ``.labelstudio/``): the checkout's root
  when run from a checkout, else ``$XDG_DATA_HOME/rupture-nlp`` (``~/.local/share/rupture-nlp``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from .errors import RuptureError

DEFAULT_MODEL_NAME = "rupture-3rs-minilm"
MODEL_ENV = "RUPTURE_MODEL"
LABELSTUDIO_HOME_ENV = "RUPTURE_LABELSTUDIO_HOME"


def checkout_root() -> Path | None:
    """The source checkout this package is imported from, or None (an installed wheel)."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "scripts" / "labelstudio.sh").is_file():
        return root
    return None


def _is_model_dir(d: Path) -> bool:
    return (d / "config.json").is_file()


def packaged_model_dir() -> Path | None:
    """The default model shipped inside the installed package, or None (e.g. an editable install)."""
    res = resources.files("rupture_nlp").joinpath("data", "models", DEFAULT_MODEL_NAME)
    return res if isinstance(res, Path) and _is_model_dir(res) else None


def default_model_dir() -> Path:
    """The model used when no ``--model`` is given: ``RUPTURE_MODEL``, else the packaged default
    model, else the checkout's ``models/rupture-3rs-minilm``; a one-line RuptureError if none."""
    env = os.environ.get(MODEL_ENV, "").strip()
    if env:
        d = Path(env).expanduser()
        if not _is_model_dir(d):
            raise RuptureError(
                f"{MODEL_ENV} is not a model directory (no config.json); set it to one or pass --model DIR", d
            )
        return d
    d = packaged_model_dir()
    if d is not None:
        return d
    root = checkout_root()
    if root is not None and _is_model_dir(root / "models" / DEFAULT_MODEL_NAME):
        return root / "models" / DEFAULT_MODEL_NAME
    raise RuptureError(
        f"no model: pass --model DIR or set {MODEL_ENV} to a model directory "
        f"(the rupture-nlp wheel and a source checkout's models/{DEFAULT_MODEL_NAME} "
        "carry the default model)"
    )


@contextmanager
def labelstudio_script() -> Iterator[Path]:
    """The packaged Label Studio server script as a file on disk (while the context is open)."""
    res = resources.files("rupture_nlp").joinpath("data", "labelstudio.sh")
    if not res.is_file():
        raise RuptureError(
            "the Label Studio script rupture_nlp/data/labelstudio.sh is missing from the "
            "installed package; reinstall rupture-nlp"
        )
    with resources.as_file(res) as p:
        yield Path(p)
