"""Quiet, offline loading of Hugging Face encoders and tokenizers."""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any, Iterator

from ..errors import RuptureError


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence load reports, progress bars and deprecation chatter of transformers/peft."""
    import transformers
    from transformers.utils import logging as hf_logging

    old = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        hf_logging.set_verbosity(old)
        if bars:
            hf_logging.enable_progress_bar()
        del transformers


#: Hugging Face files whose ``auto_map`` makes transformers import Python code from the directory.
CODE_CONFIG_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


def refuse_remote_code(path: Path) -> None:
    """RuptureError when a model directory asks for custom code: an ``auto_map`` in its
    config or tokenizer config, or a ``*.py`` file beside the weights. Nothing is imported;
    every loader also passes ``trust_remote_code=False`` (transformers would otherwise ask
    "run the custom code? [y/N]" and run it on "y")."""
    path = Path(path)
    for name in CODE_CONFIG_FILES:
        f = path / name
        if not f.is_file():
            continue
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # the loader reports an unreadable file
        if isinstance(d, dict) and "auto_map" in d:
            raise RuptureError(
                "asks to run custom code ('auto_map'); rupture-nlp never runs code from a "
                "model directory: remove 'auto_map' or use another model",
                f,
            )
    code = sorted(path.glob("*.py"))
    if code:
        raise RuptureError(
            "a Python file in a model directory; rupture-nlp never runs code from a model "
            "directory: remove it or use another model",
            code[0],
        )


def load_tokenizer(path: Path) -> Any:
    """``AutoTokenizer`` from a local directory (never ``BertTokenizerFast(vocab_file=...)``,
    which maps everything to [UNK] under transformers 5); never runs code from it."""
    from transformers import AutoTokenizer

    refuse_remote_code(path)
    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise RuptureError(f"cannot load the tokenizer ({type(e).__name__})", path) from None


def load_encoder(path: Path, pooling: str) -> Any:
    """The bare encoder (``AutoModel``) of a local directory; the [CLS] pooler only for ``cls``
    pooling; never runs code from the directory."""
    from transformers import AutoConfig, AutoModel

    refuse_remote_code(path)
    try:
        with quiet_transformers():
            cfg = AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
            kw = {}
            if cfg.model_type in ("bert", "roberta", "xlm-roberta", "mpnet"):
                kw["add_pooling_layer"] = pooling == "cls"
            return AutoModel.from_pretrained(
                str(path), config=cfg, local_files_only=True, use_safetensors=True, trust_remote_code=False, **kw
            )
    except (OSError, ValueError, KeyError) as e:
        raise RuptureError(f"cannot load the encoder ({type(e).__name__}: {str(e)[:160]})", path) from None
