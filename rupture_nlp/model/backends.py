"""Inference backends for a loaded :class:`~rupture_nlp.model.RuptureClassifier`.

``torch`` (the default) runs the network as trained. ``openvino`` converts it once at load with
``openvino.convert_model`` (dynamic batch and sequence dimensions) and runs it compiled for the
CPU in float32: the same scores up to float rounding (about 1e-6), 1.02-1.15x the speed of torch
in the runs so far (the model card's speed note). What is converted: a cross model's whole network; a session model's
utterance encoder, its dialogue head (a small share of the time) staying in torch.

:class:`ExportedNet` stands in for the torch network on the inference path: it is called with
the collated tensors (``collate()``), returns a tensor, and has ``embed`` (session models) and
``head`` like the network it replaces. ``scripts/bench_tag.py`` builds its ONNX Runtime and
OpenVINO-int8 variants on the same pieces.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import RuptureError

if TYPE_CHECKING:  # torch is imported where a network is, so that BACKENDS is cheap to import
    import torch

#: The backends ``RuptureClassifier.from_pretrained(backend=...)`` and ``rupture tag --backend`` accept.
BACKENDS = ("torch", "openvino")


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


class OpenVINONet(ExportedNet):
    """``clf.net`` converted by OpenVINO and compiled for the CPU with ``threads`` inference threads
    in float32 (``INFERENCE_PRECISION_HINT`` f32: the CPU plugin would otherwise use bf16 where the
    CPU has it). ``transform`` (optional) maps the converted ``openvino.Model`` before compiling
    (the benchmark quantises it with NNCF there)."""

    def __init__(self, clf: Any, threads: int, transform: Callable[[Any], Any] | None = None):
        import torch

        try:
            import openvino as ov
        except ImportError:
            raise RuptureError("the openvino backend needs the openvino package (pip install openvino)") from None
        module, names, sample, _ = export_module(clf)
        self.net = clf.net
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
        if transform is not None:
            model = transform(model)
        self.names, self.inputs = names, set(names)
        self.compiled = ov.Core().compile_model(
            model,
            "CPU",
            {"INFERENCE_NUM_THREADS": int(threads), "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"},
        )
        self.request = self.compiled.create_infer_request()

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        self.request.infer([feed[n] for n in self.names])
        return self.request.get_output_tensor(0).data.astype(np.float32, copy=True)
