"""Row-wise int8 storage of weight matrices: the LoRA factors and the dialogue head's matrices of a
compact model, written by ``compact.lora_from_full``, read by ``RuptureClassifier.from_pretrained``
(which dequantises them on load)."""

from __future__ import annotations

import torch

#: How ``compact.lora_from_full`` can store adapter factors.
DTYPES = ("float32", "float16", "int8")


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 quantisation of a 2-d tensor row by row: ``(q, scale)`` with ``q`` int8
    of ``w``'s shape and ``scale`` float16 (rows,), so that ``w ~ q * scale[:, None]`` (the
    error of an element is at most half its row's largest magnitude / 127)."""
    w = w.detach().float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).to(torch.float16)
    q = torch.round(w / scale.float()[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def quantize_matrices(tensors: dict[str, torch.Tensor], names: set[str]) -> dict[str, torch.Tensor]:
    """``tensors`` with those in ``names`` stored row-wise int8 (:func:`quantize_rows`, a
    ``<name>.scale`` added for each); every other tensor unchanged."""
    out = {}
    for k, v in tensors.items():
        if k in names:
            out[k], out[k + ".scale"] = quantize_rows(v)
        else:
            out[k] = v
    return out


def dequantize(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 state of a file with int8 tensors (see :func:`quantize_rows`): every int8
    tensor times its ``<name>.scale`` rows; every other floating tensor as float32, the rest as
    they are. A file without int8 tensors comes back as it was (in float32)."""
    out = {}
    for k, v in tensors.items():
        owner = tensors.get(k.removesuffix(".scale")) if k.endswith(".scale") else None
        if owner is not None and owner.dtype == torch.int8:  # an int8 tensor's row scales
            continue
        if v.dtype == torch.int8:
            scale = tensors.get(k + ".scale")
            if scale is None or scale.ndim != 1 or v.ndim != 2 or scale.shape[0] != v.shape[0]:
                raise ValueError(f"int8 tensor {k} lacks a matching row scale")
            out[k] = v.float() * scale.float()[:, None]
        else:
            out[k] = v.float() if v.is_floating_point() else v
    return out
