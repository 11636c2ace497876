"""``RuptureClassifier``: load, save and run a trained rupture model.

A model directory holds::

    config.json                 rupture settings (format, base, pooling, inputs, labels, ...)
    head.safetensors            the classification head (and nothing else; a compact model's matrices int8)
    adapter_model.safetensors   LoRA adapters (peft format) over the hash-checked base   } one of
    adapter_config.json                                                                   } these
    encoder/                    a full fine-tuned encoder (config.json + model.safetensors)  } two
    tokenizer files, schema.yaml, thresholds.json, training_config.json, metrics.json,
    README.md (model card), baselines/{tfidf,textcat}/

Inference is batched over all utterances given, sorted by token length (little padding),
under ``torch.inference_mode``; LoRA adapters are merged into the encoder on load so the
adapted model runs as fast as the base.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from .. import __version__
from ..atomic import atomic_write_bytes, atomic_write_text
from ..decision import apply_predictions
from ..errors import RuptureError
from ..records import Session
from ..schema import LabelSchema, load_schema
from .base import BaseModel, file_sha256, resolve_recorded_base
from .hf import load_encoder, load_tokenizer, quiet_transformers, refuse_remote_code
from .inputs import InputConfig
from .architectures import architecture_names, get_architecture
from .modeling import POOLINGS
from .backends import BACKENDS
from .quantize import dequantize
from .session import SessionConfig

FORMAT = "rupture-classifier"
FORMAT_VERSION = 1
WEIGHT_MODES = ("lora", "full")
QUANTIZE = (None, "int8")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "merges.txt",
    "vocab.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


@dataclass
class ModelConfig:
    """Everything needed to rebuild the network and its inputs (``config.json``).

    Validated on construction (ValueError naming the field); :meth:`from_dict` turns that into a
    RuptureError naming the file.
    """

    name: str = "rupture-model"
    arch: str = "cross"  # a registered architecture (architectures.py)
    base: dict[str, Any] = field(default_factory=dict)
    weights: str = "lora"  # "lora" (adapters over the base) or "full"
    pooling: str = "mean"  # "mean" or "cls"
    dropout: float = 0.1
    input: InputConfig = field(default_factory=InputConfig)
    session: dict[str, Any] | None = None  # SessionConfig settings (arch "session")
    lora: dict[str, Any] | None = None  # r, alpha, dropout, target_modules
    speaker_mask: bool = True  # labels of the other speaker role get probability 0
    quantize: str | None = None  # None or "int8" (dynamic quantisation at load)
    batch_size: int = 128  # inference batch size (utterances; tokens capped, see architectures)
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.input, dict):
            self.input = InputConfig.from_dict(self.input)
        if self.arch not in architecture_names():
            raise ValueError(f"'arch' must be one of {', '.join(architecture_names())}")
        if self.weights not in WEIGHT_MODES:
            raise ValueError(f"'weights' must be one of {WEIGHT_MODES}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"'pooling' must be one of {POOLINGS}")
        if self.quantize not in QUANTIZE:
            raise ValueError("'quantize' must be null or 'int8'")
        if self.arch == "session":
            self.session = SessionConfig.from_dict(self.session).to_dict()
        if int(self.batch_size) < 1:
            raise ValueError("'batch_size' must be positive")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input"] = self.input.to_dict()
        if self.arch == "cross":
            d.pop("session")  # cross models keep the config.json they always had
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "rupture_version": __version__, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: Path | None = None) -> "ModelConfig":
        if d.get("format") != FORMAT:
            raise RuptureError(f"not a rupture model directory (config.json 'format' is not '{FORMAT}')", path)
        if int(d.get("format_version", 0)) > FORMAT_VERSION:
            raise RuptureError(
                f"model format version {d.get('format_version')} is newer than this "
                f"rupture-nlp understands ({FORMAT_VERSION}); upgrade rupture-nlp",
                path,
            )
        known = cls.__dataclass_fields__
        try:
            return cls(**{k: v for k, v in d.items() if k in known})
        except (ValueError, TypeError) as e:
            raise RuptureError(f"config.json: {e}", path) from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuptureError(f"model directory lacks {path.name}", path.parent) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RuptureError("not valid JSON (the model directory is corrupt)", path) from None


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise RuptureError(f"model directory lacks {path.name}", path.parent)
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise RuptureError(f"corrupt weight file ({type(e).__name__})", path) from None


def _file_digests(d: Path, cfg: "ModelConfig", base: BaseModel | None) -> dict[str, str]:
    """sha256 of every file loading a model reads besides config.json, thresholds.json and the
    weights (those enter ``model_version`` by content): schema, adapter config, tokenizer files,
    the full encoder's config, and the base model's checked files (``base/NAME``)."""
    names = ["schema.yaml", *TOKENIZER_FILES]
    if cfg.weights == "lora":
        names.append("adapter_config.json")
    else:
        names.append("encoder/config.json")
    out = {n: file_sha256(d / n) for n in names if (d / n).is_file()}
    if (d / "additional_chat_templates").is_dir():
        out.update(
            {
                f"additional_chat_templates/{p.name}": file_sha256(p)
                for p in sorted((d / "additional_chat_templates").iterdir())
                if p.is_file()
            }
        )
    if base is not None:
        out.update({f"base/{k}": v for k, v in base.sha256.items()})
    return out


def _speaker_allowed(schema: LabelSchema) -> dict[str, np.ndarray]:
    """Per speaker role, a 0/1 vector (n_labels,) of the labels that role can carry."""
    out = {}
    for role in ("therapist", "client"):
        out[role] = np.array([1.0 if l.speaker in ("any", role) else 0.0 for l in schema.labels], dtype=np.float32)
    return out


def _merge_adapters(encoder: torch.nn.Module, d: Path, dtype: str | None) -> torch.nn.Module:
    """The encoder with the LoRA adapters of model directory ``d`` merged into its weights.

    Adapters stored as int8 (``compact.lora_from_full``) are dequantised first and set into a
    peft model built from ``adapter_config.json``; any other adapter file is peft's own."""
    from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict

    if dtype != "int8":
        return PeftModel.from_pretrained(encoder, str(d), is_trainable=False).merge_and_unload()
    state = dequantize(_load_safetensors(d / "adapter_model.safetensors"))
    model = get_peft_model(encoder, LoraConfig.from_pretrained(str(d)))
    result = set_peft_model_state_dict(model, state)
    if result.unexpected_keys or any("lora_" in k for k in result.missing_keys):
        raise ValueError("adapter tensors do not match adapter_config.json")
    return model.merge_and_unload()


class RuptureClassifier:
    """A trained rupture model: probabilities and decisions for every utterance of sessions.

    Build one with :meth:`from_pretrained` (or from training code); ``predict_proba`` returns an
    array (n_utterances, n_labels) in ``schema.label_ids`` order; ``predict`` returns copies of the
    sessions with ``labels`` and ``scores`` set.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        tokenizer: Any,
        schema: LabelSchema,
        thresholds: np.ndarray,
        config: ModelConfig,
        *,
        adapter_files: dict[str, bytes] | None = None,
        base: BaseModel | None = None,
        files: dict[str, str] | None = None,
        raw_config: dict[str, Any] | None = None,
    ):
        self.net = net.eval()
        self.tokenizer = tokenizer
        self.schema = schema
        self.thresholds = np.asarray(thresholds, dtype=float)
        self.config = config
        self.base = base
        self._adapter_files = adapter_files
        self._files = dict(files or {})  # file name -> sha256 of the files loaded
        self._raw_config = dict(raw_config or {})  # config.json as read (unknown keys included)
        self._infer_net: torch.nn.Module | None = None
        self.backend = "torch"  # inference backend (rupture_nlp.model.backends); set by from_pretrained
        self._allowed = _speaker_allowed(schema)
        self._version: str | None = None
        if len(self.thresholds) != len(schema.label_ids):
            raise ValueError("one threshold per label is needed")

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        *,
        base: str | Path | None = None,
        quantize: str | None | bool = False,
        threads: int | None = None,
        backend: str = "torch",
    ) -> "RuptureClassifier":
        """Load a model directory. ``base`` overrides where the LoRA base is found (its weights
        must match the recorded sha256); ``quantize`` None/"int8" overrides the saved setting
        (False keeps it); ``threads`` sets torch's intra-op threads; ``backend`` "torch",
        "openvino" (:mod:`rupture_nlp.model.backends`: the network converted at the first
        prediction, float32, same scores) or "openvino-int8" (converted and quantised to int8 at
        the first prediction, about twice as fast, scores move a little)."""
        if backend not in BACKENDS:
            raise RuptureError(f"backend must be one of {', '.join(BACKENDS)}")
        d = Path(model_dir)
        if not d.is_dir():
            raise RuptureError("model directory not found", d)
        if not (d / "config.json").is_file():
            raise RuptureError("not a rupture model directory (no config.json)", d)
        refuse_remote_code(d)
        raw_config = _read_json(d / "config.json")
        cfg = ModelConfig.from_dict(raw_config, d / "config.json")
        if quantize is not False:
            if quantize not in QUANTIZE:
                raise RuptureError("quantize must be None or 'int8'")
            cfg.quantize = quantize
        if threads:
            torch.set_num_threads(int(threads))
        if not (d / "schema.yaml").is_file():
            raise RuptureError("model directory lacks schema.yaml", d)
        schema = load_schema(d / "schema.yaml")
        if cfg.labels and cfg.labels != schema.label_ids:
            raise RuptureError(
                "schema.yaml does not match the labels the model was trained on (config.json 'labels')",
                d / "schema.yaml",
            )
        th_raw = _read_json(d / "thresholds.json")
        if not isinstance(th_raw, dict) or set(th_raw) != set(schema.label_ids):
            missing = sorted(set(schema.label_ids) - set(th_raw if isinstance(th_raw, dict) else {}))
            raise RuptureError(
                "thresholds.json must map every label of schema.yaml to a threshold"
                + (f" (missing: {', '.join(missing[:5])})" if missing else ""),
                d / "thresholds.json",
            )
        try:
            thresholds = np.array([float(th_raw[l]) for l in schema.label_ids])
        except (TypeError, ValueError):
            raise RuptureError("thresholds.json: every threshold must be a number", d / "thresholds.json") from None
        arch = get_architecture(cfg.arch)
        # cheap checks first: the head, the adapters, the base (heavy loading comes last)
        # a compact model's head matrices are stored int8 (compact.lora_from_full)
        try:
            head_state = dequantize(_load_safetensors(d / "head.safetensors"))
        except ValueError as e:
            raise RuptureError(f"head.safetensors: {e}", d / "head.safetensors") from None
        head = {k.removeprefix("head."): v for k, v in head_state.items()}
        adapter_files = None
        base_model = None
        if cfg.weights == "lora":
            for name in ADAPTER_FILES:
                if not (d / name).is_file():
                    raise RuptureError(f"model directory lacks {name} (LoRA adapters)", d)
            _load_safetensors(d / "adapter_model.safetensors")  # clear error if corrupt
            _read_json(d / "adapter_config.json")
            adapter_files = {name: (d / name).read_bytes() for name in ADAPTER_FILES}
            base_model = resolve_recorded_base(cfg.base, base, d)
            enc_dir = base_model.path
        else:
            enc_dir = d / "encoder"
            if not (enc_dir / "config.json").is_file():
                raise RuptureError("model directory lacks encoder/ (full fine-tuned weights)", d)
        hidden = _read_json(enc_dir / "config.json").get("hidden_size")
        problem = arch.check_head(head, schema, cfg, int(hidden) if hidden is not None else None)
        if problem:
            raise RuptureError(f"head.safetensors {problem}", d / "head.safetensors")
        tokenizer = load_tokenizer(d)
        encoder = load_encoder(enc_dir, cfg.pooling)
        if cfg.weights == "lora":
            try:
                with quiet_transformers():
                    encoder = _merge_adapters(encoder, d, (cfg.lora or {}).get("dtype"))
            except (ValueError, KeyError, RuntimeError, OSError) as e:
                raise RuptureError(f"LoRA adapters do not fit the base model ({type(e).__name__})", d) from None
        net = arch.build(encoder, schema, cfg)
        net.head.load_state_dict(head)
        clf = cls(
            net,
            tokenizer,
            schema,
            thresholds,
            cfg,
            adapter_files=adapter_files,
            base=base_model,
            files=_file_digests(d, cfg, base_model),
            raw_config=raw_config,
        )
        if backend != "torch" and cfg.quantize:
            raise RuptureError(f"the {backend} backend quantises its own way: drop quantize ({cfg.quantize})", d)
        clf.backend = backend
        return clf

    # -- saving -----------------------------------------------------------------------------
    def save_pretrained(self, model_dir: str | Path, peft_encoder: Any = None) -> None:
        """Write config, weights, tokenizer, schema and thresholds (atomically, file by file).

        ``peft_encoder``: the LoRA-wrapped encoder during training (its adapters are saved);
        otherwise the adapters loaded with the model are written back unchanged.
        """
        from safetensors.torch import save as save_safetensors

        d = Path(model_dir)
        d.mkdir(parents=True, exist_ok=True)
        self.config.labels = list(self.schema.label_ids)
        atomic_write_text(d / "config.json", json.dumps(self.config.to_dict(), indent=2) + "\n")
        self.schema.save(d / "schema.yaml")
        self.save_thresholds(d)
        head = {f"head.{k}": v.detach().contiguous().clone() for k, v in self.net.head.state_dict().items()}
        atomic_write_bytes(d / "head.safetensors", save_safetensors(head, metadata={"format": "pt"}))
        if self.config.weights == "lora":
            if peft_encoder is not None:
                with quiet_transformers():
                    peft_encoder.save_pretrained(str(d / ".adapter.tmp"))
                files = {n: (d / ".adapter.tmp" / n).read_bytes() for n in ADAPTER_FILES}
                ac = json.loads(files["adapter_config.json"])
                ac["base_model_name_or_path"] = self.config.base.get("name")  # no local paths in the card
                if isinstance(ac.get("target_modules"), list):  # peft keeps a set: fix the order
                    ac["target_modules"] = sorted(ac["target_modules"])
                files["adapter_config.json"] = (json.dumps(ac, indent=2, sort_keys=True) + "\n").encode()
                shutil.rmtree(d / ".adapter.tmp", ignore_errors=True)
                self._adapter_files = files
            if not self._adapter_files:
                raise ValueError("a LoRA model needs its adapters to be saved")
            for n, data in self._adapter_files.items():
                atomic_write_bytes(d / n, data)
        else:
            with quiet_transformers():
                self.net.encoder.save_pretrained(str(d / "encoder"))
        with quiet_transformers():
            self.tokenizer.save_pretrained(str(d))
        for junk in ("chat_template.jinja",):
            (d / junk).unlink(missing_ok=True)
        self._files = _file_digests(d, self.config, self.base)
        self._raw_config = {}
        self._version = None

    def save_thresholds(self, model_dir: str | Path) -> None:
        """Write ``thresholds.json`` ({label: threshold}, 4 decimals) only."""
        self.thresholds = np.round(np.asarray(self.thresholds, dtype=float), 4)
        atomic_write_text(
            Path(model_dir) / "thresholds.json",
            json.dumps({l: float(t) for l, t in zip(self.schema.label_ids, self.thresholds)}, indent=2) + "\n",
        )
        self._version = None

    # -- identity ---------------------------------------------------------------------------
    @property
    def model_version(self) -> str:
        """``name@<12 hex>``: a digest of everything loading the model read (settings, weights,
        head, thresholds, labels, schema, tokenizer files, adapter config, base files): a changed
        file gives another version."""
        if self._version is None:
            h = hashlib.sha256()
            cfg = {**self._raw_config, **self.config.to_dict()}
            for k in ("rupture_version", "batch_size"):
                cfg.pop(k, None)
            cfg["labels"] = self.schema.label_ids
            h.update(json.dumps(cfg, sort_keys=True).encode())
            h.update(json.dumps(self._files, sort_keys=True).encode())
            h.update(np.round(self.thresholds, 4).tobytes())
            for k, v in sorted(self.net.head.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().numpy().tobytes())
            if self._adapter_files:
                h.update(hashlib.sha256(self._adapter_files["adapter_model.safetensors"]).hexdigest().encode())
            else:
                for k, v in sorted(self.net.encoder.state_dict().items()):
                    h.update(k.encode())
                    h.update(v.detach().cpu().numpy().tobytes())
            self._version = f"{self.config.name}@{h.hexdigest()[:12]}"
        return self._version

    # -- inference --------------------------------------------------------------------------
    def _inference_net(self) -> torch.nn.Module:
        if self._infer_net is None:
            if self.backend in ("openvino", "openvino-int8"):
                from .backends import OpenVINONet, cache_dir, calibration_inputs, int8_cache_key, nncf_int8

                int8, cache = None, None
                if self.backend == "openvino-int8":  # quantised once, then read from the cache
                    int8 = lambda model: nncf_int8(calibration_inputs(self))(model)  # noqa: E731 - calibrate only on a cache miss
                    root = cache_dir()
                    cache = root / int8_cache_key(self) if root else None
                with quiet_transformers():
                    self._infer_net = OpenVINONet(self, torch.get_num_threads(), transform=int8, cache=cache)
            elif self.config.quantize == "int8":
                from torch.ao.quantization import quantize_dynamic

                with quiet_transformers():
                    self._infer_net = quantize_dynamic(copy.deepcopy(self.net), {torch.nn.Linear}, dtype=torch.qint8)
            else:
                self._infer_net = self.net
            self._infer_net.eval()
        return self._infer_net

    def predict_proba(
        self,
        sessions: Iterable[Session],
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Probabilities (n_utterances, n_labels), float32, rows in session/utterance order.

        Inputs are tokenised at once, sorted by length and run in batches padded to their
        longest member. ``on_batch(n)`` is called after each batch of n utterances.
        """
        sessions = list(sessions)
        n_labels = len(self.schema.label_ids)
        bs = int(batch_size or self.config.batch_size)
        P = get_architecture(self.config.arch).predict_proba(
            self._inference_net(), self.tokenizer, sessions, self.config, bs, on_batch
        )
        if not len(P):
            return np.zeros((0, n_labels), dtype=np.float32)
        if self.config.speaker_mask:
            speakers = [u.speaker for s in sessions for u in s.utterances]
            P *= np.stack([self._allowed.get(sp, np.ones(n_labels, np.float32)) for sp in speakers])
        return P

    def predict(self, sessions: Iterable[Session], *, batch_size: int | None = None) -> list[Session]:
        """Copies of the sessions with ``labels`` (thresholded) and ``scores`` set on every utterance."""
        out = [copy.deepcopy(s) for s in sessions]
        P = self.predict_proba(out, batch_size=batch_size)
        apply_predictions(out, P, self.schema, self.thresholds)
        return out

    def __repr__(self) -> str:
        return (
            f"RuptureClassifier({self.model_version}, {len(self.schema.label_ids)} labels, "
            f"{self.config.weights}, pooling={self.config.pooling})"
        )


def read_model_metrics(model_dir: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a model directory ({} if it has none)."""
    p = Path(model_dir) / "metrics.json"
    return _read_json(p) if p.is_file() else {}


__all__: Sequence[str] = ("RuptureClassifier", "ModelConfig", "read_model_metrics")
