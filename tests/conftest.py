"""Shared pytest set-up: offline Hugging Face, paths to the repository's data, and the costly
shared objects as session fixtures: ``tiny_model`` (tiny trained models), ``trained_baselines``
and ``ls_server`` (a real Label Studio server). Tests marked ``slow`` are left out by ``scripts/test.sh --fast``."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# converted networks (rupture tag --backend openvino-int8) go to a cache of this run, not the user's
os.environ["RUPTURE_CACHE"] = tempfile.mkdtemp(prefix="rupture-test-cache-")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return ROOT / "corpora"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A factory ``get(kind="lora") -> Path``: the directory of a tiny trained model of that kind
    (``lora``, ``full``, ``exclusive``; see ``model_helpers.train_tiny_model``), trained on first
    use, once per test session, under the session's temporary directory. Treat it as read-only:
    copy it before changing files. Its train/dev files are in ``model_helpers.data_dir(path)``."""
    from model_helpers import KINDS, train_tiny_model

    made: dict[str, Path] = {}
    failed: dict[str, str] = {}

    def get(kind: str = "lora") -> Path:
        if kind not in KINDS:
            raise ValueError(f"tiny model kinds: {KINDS}")
        if kind in failed:  # do not train again for every test
            pytest.fail(f"training the tiny {kind} model failed earlier in this session: {failed[kind]}")
        if kind not in made:
            try:
                made[kind] = train_tiny_model(kind, tmp_path_factory.mktemp(f"tiny-{kind}"))
            except Exception as e:
                failed[kind] = f"{type(e).__name__}: {e}"
                raise
        return made[kind]

    return get


@pytest.fixture(scope="session")
def trained_baselines(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Both baselines trained once per session on the evaluation tests' toy corpus
    (``eval_helpers.train_toy_baselines``): {"root", "schema", "train", "dev", "test", "info"}."""
    from eval_helpers import train_toy_baselines

    return train_toy_baselines(tmp_path_factory.mktemp("baselines"))


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory):
    """One Label Studio server for the session, started by scripts/labelstudio.sh on a free port
    with a temporary data directory (``ls_helpers.LSServer``). Stopped at the end of the session
    whatever happened: after failed tests, after a failed start, and after a test that stopped and
    restarted it; anything left of it is killed. pytest keeps a failed start (or the skip when
    Label Studio is not installed) for every later test instead of starting again."""
    from ls_helpers import new_test_server

    server = new_test_server(tmp_path_factory.mktemp("labelstudio-data"))
    try:
        server.start_seconds = server.start()
        print(f"\nLabel Studio test server ready in {server.start_seconds:.1f} s at {server.url}", file=sys.stderr)
        yield server
    finally:
        killed = server.shutdown()
        if killed:
            print(f"\nLabel Studio test server did not stop; killed process group(s) {killed}", file=sys.stderr)
