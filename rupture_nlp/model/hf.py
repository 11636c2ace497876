"""Quiet, offline loading of Hugging Face encoders and tokenizers."""
from __future__ import annotations

import contextlib
import logging
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


def load_tokenizer(path: Path) -> Any:
    """``AutoTokenizer`` from a local directory (never ``BertTokenizerFast(vocab_file=...)``,
    which maps everything to [UNK] under transformers 5)."""
    from transformers import AutoTokenizer
    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise RuptureError(f"cannot load the tokenizer ({type(e).__name__})", path) from None


def load_encoder(path: Path, pooling: str) -> Any:
    """The bare encoder (``AutoModel``) of a local directory; the [CLS] pooler only for ``cls`` pooling."""
    from transformers import AutoConfig, AutoModel
    try:
        with quiet_transformers():
            cfg = AutoConfig.from_pretrained(str(path), local_files_only=True)
            kw = {}
            if cfg.model_type in ("bert", "roberta", "xlm-roberta", "mpnet"):
                kw["add_pooling_layer"] = pooling == "cls"
            return AutoModel.from_pretrained(str(path), config=cfg, local_files_only=True,
                                             use_safetensors=True, **kw)
    except (OSError, ValueError, KeyError) as e:
        raise RuptureError(f"cannot load the encoder ({type(e).__name__}: {str(e)[:160]})", path) from None


def set_quiet_logging() -> None:
    """Keep library loggers at warnings or above (the CLI prints its own progress)."""
    for name in ("transformers", "peft", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
