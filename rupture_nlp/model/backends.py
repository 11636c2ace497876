"""Inference backends for a loaded :class:`~rupture_nlp.model.RuptureClassifier`.

``torch`` (the default) runs the network as trained. ``openvino`` converts it once at load with
``openvino.convert_model`` (dynamic batch and sequence dimensions) and runs it compiled for the
CPU in float32: the same scores up to float rounding (about 1e-6), 1.02-1.15x the speed of torch
in the runs so far (the model card's speed note). ``openvino-int8`` quantises that converted
network statically to int8 with NNCF before compiling it, calibrated on the package's own
calibration sessions (:func:`calibration_inputs`: project-written text, never the data being
tagged or the model's training data, so the same model gives the same scores on any input): about
twice the speed of torch for scores that move a little (the card gives its F1 difference).
What is converted: a cross model's whole network; a session model's utterance encoder, its
dialogue head (a small share of the time) staying in torch.

:class:`ExportedNet` stands in for the torch network on the inference path: it is called with
the collated tensors (``collate()``), returns a tensor, and has ``embed`` (session models) and
``head`` like the network it replaces. ``scripts/bench_tag.py`` builds its ONNX Runtime and
OpenVINO-int8 variants on the same pieces.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import RuptureError

if TYPE_CHECKING:  # torch is imported where a network is, so that BACKENDS is cheap to import
    import torch

#: The backends ``RuptureClassifier.from_pretrained(backend=...)`` and ``rupture tag --backend`` accept.
BACKENDS = ("torch", "openvino", "openvino-int8")

#: Utterances NNCF calibrates ``openvino-int8`` on (all of :func:`calibration_inputs`).
CALIBRATION_SIZE = 300
#: Where they come from (built by ``scripts/make_calibration.py`` from ``corpora/``).
CALIBRATION_PATH = Path(__file__).resolve().parent.parent / "data" / "calibration.jsonl"
#: The setting naming the folder converted networks are kept in (:func:`cache_dir`); ``off``: none.
CACHE_ENV = "RUPTURE_CACHE"


def export_module(clf: Any) -> tuple["torch.nn.Module", list[str], tuple["torch.Tensor", ...], Any]:
    """What a backend converts from ``clf.net``: ``(module, input names, sample inputs, head)``.

    Cross model: its forward (``input_ids``, ``attention_mask``, ``token_type_ids``, ``pause``
    in, logits out), ``head`` None. Session model: its utterance encoder (``embed``: pooled
    vectors (batch, hidden) out), ``head`` the dialogue head that stays in torch.
    """
    import torch

    net = clf.net.eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    if clf.config.arch == "session":

        class Embed(torch.nn.Module):
            def __init__(self, n: torch.nn.Module):
                super().__init__()
                self.n = n

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.n.embed(input_ids, attention_mask, token_type_ids)

        return Embed(net), ["input_ids", "attention_mask", "token_type_ids"], (ids, ids, ids * 0), net.head
    names = ["input_ids", "attention_mask", "token_type_ids", "pause"]
    return net, names, (ids, torch.ones_like(ids), torch.zeros_like(ids), torch.zeros((2, net.n_pause))), None


def calibration_inputs(clf: Any, size: int = CALIBRATION_SIZE, path: Any = None) -> list[tuple[np.ndarray, ...]]:
    """The inputs the ``openvino-int8`` backend is calibrated on: ``size`` utterances spread evenly
    over the canonical sessions in ``path`` (default: the package's ``data/calibration.jsonl``,
    stretches of project-written corpus sessions, clean and ASR-style), each prepared as the model
    prepares any input and tokenised alone (batch 1, no padding), as tuples in
    :func:`export_module`'s input order."""
    from ..records import read_sessions

    sessions = list(read_sessions(path or CALIBRATION_PATH))
    if clf.config.arch == "session":
        from .session import utterance_texts

        texts = [t for s in sessions for t in utterance_texts(s)]
        pick = np.linspace(0, len(texts) - 1, min(size, len(texts))).round().astype(int)
        enc = clf.tokenizer([texts[i] for i in pick], truncation=True, max_length=clf.config.input.max_length)
        pause = None
    else:
        from .inputs import encode, examples

        exs = examples(sessions, clf.config.input)
        pick = np.linspace(0, len(exs) - 1, min(size, len(exs))).round().astype(int)
        enc = encode(clf.tokenizer, [exs[i] for i in pick], clf.config.input)
        pause = enc["pause"]
    items = []
    for j in range(len(pick)):
        ids = np.array([enc["input_ids"][j]], dtype=np.int64)
        tt = np.array([enc["token_type_ids"][j]], dtype=np.int64) if "token_type_ids" in enc else ids * 0
        item = (ids, np.ones_like(ids), tt)
        items.append(item if pause is None else (*item, np.array([pause[j]], dtype=np.float32)))
    return items


def _import_nncf() -> Any:
    try:
        import nncf
    except ImportError:
        raise RuptureError("the openvino-int8 backend needs the nncf package (pip install nncf)") from None
    return nncf


def nncf_int8(calibration: list[tuple[np.ndarray, ...]]) -> Callable[[Any], Any]:
    """An :class:`OpenVINONet` ``transform``: static int8 quantisation by NNCF (``nncf.quantize``,
    transformer model type, default preset) calibrated on every item of ``calibration``."""

    def transform(model: Any) -> Any:
        nncf = _import_nncf()
        # NNCF draws progress bars (rich, on stdout) and logs at INFO: neither belongs in rupture's output
        level = logging.getLogger("nncf").level
        nncf.set_log_level(logging.ERROR)
        try:
            with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                return nncf.quantize(
                    model,
                    nncf.Dataset(calibration),
                    model_type=nncf.ModelType.TRANSFORMER,
                    subset_size=len(calibration),
                )
        finally:
            nncf.set_log_level(level)

    return transform


class ExportedNet:
    """Stands in for ``clf.net`` at inference: ``__call__``/``embed`` take ``collate()``'s tensors,
    feed the inputs the converted network has (``self.inputs``) to :meth:`_run` and return its
    output as a float32 tensor; every other attribute (a session model's ``head``, a cross
    model's ``layout``) is the torch network's (``self.net``)."""

    inputs: set[str]
    net: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or self.net is None:
            raise AttributeError(name)
        return getattr(self.net, name)

    def eval(self) -> "ExportedNet":
        return self

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, **batch: "torch.Tensor") -> "torch.Tensor":
        import torch

        feed = {k: v.numpy() for k, v in batch.items() if k in self.inputs}
        if "token_type_ids" in self.inputs and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        return torch.from_numpy(self._run(feed))

    embed = __call__


def cache_dir() -> Path | None:
    """Where converted networks are kept between runs: the ``RUPTURE_CACHE`` setting, else
    ``$XDG_CACHE_HOME/rupture-nlp`` (``~/.cache/rupture-nlp``); None when ``RUPTURE_CACHE`` is
    ``off``. What is kept there is a converted copy of a model: as sensitive as the model itself
    (the folder is created private, mode 0700)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env.lower() == "off":
        return None
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "rupture-nlp"


def int8_cache_key(clf: Any) -> str:
    """What the ``openvino-int8`` network depends on: the model (its version hashes every weight),
    the calibration text and size, and the openvino and nncf versions."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:  # OpenVINONet says what is missing
            return "missing"

    h = hashlib.sha256()
    for part in (clf.model_version, CALIBRATION_SIZE, installed("openvino"), installed("nncf")):
        h.update(f"{part}\n".encode())
    h.update(CALIBRATION_PATH.read_bytes())
    return f"openvino-int8-{h.hexdigest()[:20]}"


def _read_cached(ov: Any, path: Path | None) -> Any:
    """The converted model saved at ``path`` (``model.xml`` + ``model.bin``), or None (absent, or
    unreadable: then it is converted again and saved over)."""
    if path is None or not (path / "model.xml").is_file():
        return None
    try:
        return ov.Core().read_model(path / "model.xml")
    except Exception:  # a damaged cache entry is only a slower load
        return None


def _save_cached(ov: Any, model: Any, path: Path) -> None:
    """Save ``model`` at ``path`` atomically: written in a temporary folder beside it, renamed into
    place over whatever was there (a damaged entry, or an equal one from a concurrent run). Float32
    weights stay float32. A cache that cannot be written only means converting again next time."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        ov.save_model(model, tmp / "model.xml", compress_to_fp16=False)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except (OSError, RuntimeError):  # no cache folder, full or read-only disk; another run renamed its copy in between
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


class OpenVINONet(ExportedNet):
    """``clf.net`` converted by OpenVINO and compiled for the CPU with ``threads`` inference threads
    in float32 (``INFERENCE_PRECISION_HINT`` f32: the CPU plugin would otherwise use bf16 where the
    CPU has it). ``transform`` (optional) maps the converted ``openvino.Model`` before compiling
    (``openvino-int8``: :func:`nncf_int8`). With ``cache`` (a folder) the converted and transformed
    model is read from there when present, else saved there for the next load."""

    def __init__(
        self, clf: Any, threads: int, transform: Callable[[Any], Any] | None = None, cache: Path | None = None
    ):
        try:
            import openvino as ov
        except ImportError:
            raise RuptureError("the openvino backend needs the openvino package (pip install openvino)") from None
        module, names, sample, _ = export_module(clf)
        self.net = clf.net
        self.names, self.inputs = names, set(names)
        model = _read_cached(ov, cache)
        self.from_cache = model is not None
        if model is None:
            model = self._convert(ov, module, names, sample)
            if transform is not None:
                model = transform(model)
            if cache is not None:
                _save_cached(ov, model, cache)
        self.compiled = ov.Core().compile_model(
            model,
            "CPU",
            {"INFERENCE_NUM_THREADS": int(threads), "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"},
        )
        self.request = self.compiled.create_infer_request()

    @staticmethod
    def _convert(ov: Any, module: Any, names: list[str], sample: tuple) -> Any:
        import torch

        shapes = [
            (ov.PartialShape([-1, s.shape[1]]), ov.Type.f32)
            if n == "pause"
            else (ov.PartialShape([-1, -1]), ov.Type.i64)
            for n, s in zip(names, sample)
        ]
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on data-dependent branches
            model = ov.convert_model(module, example_input=sample, input=shapes)
        for port, n in zip(model.inputs, names):
            port.get_tensor().set_names({n})
        return model

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        self.request.infer([feed[n] for n in self.names])
        return self.request.get_output_tensor(0).data.astype(np.float32, copy=True)
