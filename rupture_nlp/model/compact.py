"""A compact copy of a fully fine-tuned model: its weight changes as low-rank adapters.

Full fine-tuning changes every weight matrix W of the encoder into W + dW. Truncating the SVD of
each dW to rank r gives LoRA factors (B = U_r sqrt(S_r), A = sqrt(S_r) V_r^T, scaling 1) that
ship in peft's adapter format over the hash-checked base, like trained LoRA adapters; the
biases of those layers and every LayerNorm are small and are kept exactly (peft ``bias``,
``modules_to_save``). Token, position and type embeddings are taken from the base: the delta
of the word-embedding matrix would be bigger than everything else together.
``lora_from_full(full_dir, out_dir, rank)`` writes such a model directory; the loader needs
nothing special (``RuptureClassifier.from_pretrained`` merges the adapters on load). Re-tuning
thresholds, metrics and the card of the compact model are ``rupture_nlp.workflow.compact_model``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import RuptureError
from .architectures import get_architecture
from .base import resolve_recorded_base
from .classifier import RuptureClassifier
from .hf import load_encoder, quiet_transformers
from .quantize import DTYPES, quantize_matrices

TARGETS = ("query", "key", "value", "dense")


def lora_from_full(
    full_dir: str | Path, out_dir: str | Path, rank: int = 64, dtype: str = "int8"
) -> tuple[RuptureClassifier, dict[str, Any]]:
    """Write a LoRA model directory approximating the full fine-tuned model in ``full_dir``.

    ``dtype``: how the adapter factors are stored: ``float32``; ``float16`` (half the size);
    ``int8`` (a quarter: each factor matrix row by row with a float16 scale, see
    :func:`~rupture_nlp.model.quantize.quantize_rows`; biases and LayerNorms stay float16; the
    head's weight matrices are stored int8 the same way). They are merged into the float32 base
    on load either way.

    Returns the new classifier and statistics: per-matrix share of the update's Frobenius norm kept
    by rank ``rank`` (min / mean), and the relative size of the dropped embedding update.
    """
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    if dtype not in DTYPES:
        raise RuptureError(f"dtype must be one of {', '.join(DTYPES)}")
    full = RuptureClassifier.from_pretrained(full_dir)
    if full.config.weights != "full":
        raise RuptureError("not a fully fine-tuned model (config.json 'weights' is not 'full')", full_dir)
    base = resolve_recorded_base(full.config.base, None, Path(full_dir))
    encoder = load_encoder(base.path, full.config.pooling)
    ft = {k: v.detach() for k, v in full.net.encoder.state_dict().items()}
    with quiet_transformers():
        peft_encoder = get_peft_model(
            encoder,
            LoraConfig(
                r=rank,
                lora_alpha=rank,
                lora_dropout=0.0,
                target_modules=list(TARGETS),
                bias="lora_only",
                modules_to_save=["LayerNorm"],
            ),
        )
    kept: list[float] = []
    with torch.no_grad():
        for name, mod in peft_encoder.base_model.model.named_modules():
            if isinstance(mod, LoraLayer):
                W0 = mod.base_layer.weight
                dW = ft[f"{name}.weight"] - W0
                U, S, Vh = torch.linalg.svd(dW, full_matrices=False)
                r = min(rank, S.numel())
                root = S[:r].sqrt()
                mod.lora_B["default"].weight.copy_(U[:, :r] * root)
                mod.lora_A["default"].weight.copy_(root[:, None] * Vh[:r])
                if mod.base_layer.bias is not None:
                    mod.base_layer.bias.copy_(ft[f"{name}.bias"])
                total = float((S**2).sum())
                kept.append(float((S[:r] ** 2).sum()) / total if total > 0 else 1.0)
            elif name.endswith("LayerNorm.modules_to_save.default"):
                src = name.replace(".modules_to_save.default", "")
                mod.weight.copy_(ft[f"{src}.weight"])
                mod.bias.copy_(ft[f"{src}.bias"])
    emb = "embeddings.word_embeddings.weight"
    base_emb = peft_encoder.base_model.model.embeddings.word_embeddings.weight.detach()
    emb_rel = float((ft[emb] - base_emb).norm() / ft[emb].norm()) if emb in ft else 0.0
    cfg = full.config
    cfg.weights = "lora"
    cfg.lora = {
        "r": rank,
        "alpha": rank,
        "dropout": 0.0,
        "target_modules": list(TARGETS),
        "source": "truncated SVD of a full fine-tuning",
        "bias": "lora_only",
        "modules_to_save": ["LayerNorm"],
    }
    net = get_architecture(cfg.arch).build(peft_encoder, full.schema, cfg)
    net.head.load_state_dict(full.net.head.state_dict())
    clf = RuptureClassifier(net, full.tokenizer, full.schema, full.thresholds, cfg, base=base)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clf.save_pretrained(out, peft_encoder=peft_encoder)
    if dtype != "float32":
        w = out / "adapter_model.safetensors"
        tensors = load_file(str(w))
        if dtype == "int8":  # the factors row-wise int8, from their float32 values
            factors = {k for k, v in tensors.items() if v.ndim == 2 and (".lora_A." in k or ".lora_B." in k)}
            tensors = quantize_matrices(tensors, factors)
        tensors = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
        # one metadata key: the header's bytes stay the same
        atomic_write_bytes(w, save_safetensors(tensors, metadata={"format": "pt"}))
        cfg.lora["dtype"] = dtype
        atomic_write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
    if dtype == "int8":  # the head's weight matrices too (its buffers and vectors stay as they are)
        h = out / "head.safetensors"
        matrices = {f"head.{k}" for k, p in net.head.named_parameters() if p.ndim == 2}
        atomic_write_bytes(
            h, save_safetensors(quantize_matrices(load_file(str(h)), matrices), metadata={"format": "pt"})
        )
    for name in ("training_config.json", "metrics.json", "README.md"):
        if (Path(full_dir) / name).is_file():
            shutil.copy(Path(full_dir) / name, out / name)
    stats = {
        "rank": rank,
        "energy_kept_min": round(min(kept), 4),
        "energy_kept_mean": round(float(np.mean(kept)), 4),
        "word_embedding_update_dropped_rel_norm": round(emb_rel, 6),
    }
    return RuptureClassifier.from_pretrained(out), stats


def main() -> None:  # pragma: no cover - developer tool
    import argparse

    ap = argparse.ArgumentParser(description="LoRA adapters from a full fine-tuned rupture model (truncated SVD)")
    ap.add_argument("full_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--dtype", choices=DTYPES, default="int8")
    a = ap.parse_args()
    _, stats = lora_from_full(a.full_dir, a.out_dir, a.rank, a.dtype)
    print(json.dumps(stats))


if __name__ == "__main__":  # pragma: no cover
    main()
