"""The one orchestration layer: train → compact → baselines → metrics → card, and evaluating a
model directory. ``rupture train``, ``rupture evaluate`` and ``scripts/build_default_model.py``
call these functions; every module they call does one job and knows nothing of this order.
Over 500 lines because it is that one layer: every multi-stage sequence (training, compacting,
evaluating, building the ASR renderings the trainer adds) is here so the stages stay ignorant of
each other; its functions are short and each is one sequence.

* :func:`train_model`: train the transformer (:func:`rupture_nlp.model.train.train_classifier`),
  train every registered baseline beside it, score everything on dev (``metrics.json``), write
  ``training_config.json`` and the card;
* :func:`compact_model`: a full fine-tuning's compact form (:func:`rupture_nlp.model.compact.lora_from_full`)
  with thresholds re-tuned on dev, then the same baselines, metrics and card;
* :func:`train_baselines`: every registered baseline (or some) trained and saved under ``baselines/``;
* :func:`evaluate_model_dir`: the transformer and every saved baseline of a model directory scored
  on the same data and the same bootstrap resamples;
* :func:`write_card`: (re-)render a model directory's ``README.md``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import __version__
from .atomic import atomic_write_text
from .baselines import baseline_names, get_baseline, load_baseline
from .corpus.align import align_session
from .corpus.asr import AsrConfig, render_session, speakers_spec, to_vtt
from .decision import label_matrix
from .errors import RuptureError
from .metrics import DEFAULT_LEVEL, DEFAULT_N_BOOT, DEFAULT_SEED, paired_difference
from .model import RuptureClassifier
from .model.base import file_sha256
from .model.card import render_card
from .model.compact import lora_from_full
from .model.session_train import tune_model_thresholds
from .model.train import TrainConfig, TrainedClassifier, runtime_info, train_classifier
from .progress import ProgressCallback
from .records import Session
from .schema import LabelSchema, load_schema
from .scoring import evaluate_predictions, load_gold_sessions, macro_f1

DEV_BLOCK = ("fine", "coarse", "session_icc", "bootstrap", "n_sessions", "n_utterances")
SYSTEM_BLOCK = ("fine", "coarse", "session_icc")


@dataclass
class TrainResult:
    """What a training run produced: the directory, dev metrics, timings (seconds)."""

    out_dir: Path
    dev_macro_f1: float
    dev_coarse_macro_f1: float
    best_epoch: int
    history: list[dict[str, Any]]
    timings: dict[str, float]
    metrics: dict[str, Any]


# ------------------------------------------------------------------------------------------
# steps
# ------------------------------------------------------------------------------------------
def load_split(src: str | Path | Sequence[Session], schema: LabelSchema, what: str) -> list[Session]:
    """Sessions of a split given as a file (checked with :func:`load_gold_sessions`) or as sessions."""
    if not isinstance(src, (str, Path)):
        return list(src)
    p = Path(src)
    if not p.is_file():
        raise RuptureError(f"{what} file not found", p)
    return load_gold_sessions(p, schema)


def describe_split(src: Any, sessions: list[Session], schema: LabelSchema) -> dict[str, Any]:
    """Sizes and label counts of a split (plus its file name and sha256 when it came from a file)."""
    Y = label_matrix(sessions, schema)
    d: dict[str, Any] = {
        "sessions": len(sessions),
        "utterances": int(len(Y)),
        "labelled_utterances": int((Y.sum(1) > 0).sum()),
        "label_counts": {l: int(c) for l, c in zip(schema.label_ids, Y.sum(0))},
    }
    if isinstance(src, (str, Path)):
        d["file"] = Path(src).name
        d["sha256"] = file_sha256(Path(src))
    return d


def reproduce_sample(dev: list[Session], P: np.ndarray, n: int = 20) -> dict[str, Any]:
    """The probabilities of the first ``n`` utterances of the first dev session (rounded), so a
    test can check quickly that a reloaded model still gives them."""
    k = min(n, len(dev[0].utterances))
    return {"session_id": dev[0].session_id, "n_utterances": k, "probabilities": np.round(P[:k], 5).tolist()}


def train_baselines(
    train_sessions: Iterable[Session],
    dev_sessions: Iterable[Session] | None,
    schema: LabelSchema,
    out_dir: str | Path,
    *,
    seed: int = 13,
    which: Sequence[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train the registered baselines (``which``: some of them, by name) on the train split
    (thresholds/selection on dev) and save them under ``out_dir/baselines/<name>``. ``options``
    passes settings to a baseline's constructor, e.g. ``{"textcat": {"epochs": 5}}``.

    Returns ``{name: {"path", "train_seconds", "dev_macro_f1": {"fine", "coarse"} | None}}``.
    """
    train = list(train_sessions)
    dev = list(dev_sessions) if dev_sessions is not None else None
    info: dict[str, Any] = {}
    for name in which if which is not None else baseline_names():
        model = get_baseline(name)(**{"seed": seed, **((options or {}).get(name) or {})})
        t0 = time.perf_counter()
        model.fit(train, schema, dev)
        secs = time.perf_counter() - t0
        path = model.save(Path(out_dir) / "baselines" / name)
        entry: dict[str, Any] = {"path": str(path), "train_seconds": round(secs, 2), "dev_macro_f1": None}
        if dev:
            entry["dev_macro_f1"] = macro_f1(
                evaluate_predictions(dev, model.predict_proba(dev), schema, model.thresholds, n_boot=0)
            )
        info[name] = entry
    return info


def evaluate_baselines(
    model_dir: Path, dev: list[Session], schema: LabelSchema, *, n_boot: int, seed: int
) -> dict[str, Any]:
    """Every saved baseline of ``model_dir`` scored on ``dev``: ``{name: {fine, coarse, session_icc}}``."""
    out: dict[str, Any] = {}
    for name in baseline_names():
        bdir = model_dir / "baselines" / name
        if bdir.is_dir():
            b = load_baseline(bdir)
            r = evaluate_predictions(dev, b.predict_proba(dev), schema, b.thresholds, n_boot=n_boot, seed=seed)
            out[name] = {k: r[k] for k in SYSTEM_BLOCK}
    return out


def _baselines_step(
    train: list[Session], dev: list[Session], schema: LabelSchema, out: Path, *, seed: int, n_boot: int
) -> tuple[dict[str, Any], float]:
    """Train every baseline into ``out`` and score them on dev: (the ``metrics.json`` block, seconds)."""
    t0 = time.perf_counter()
    info = train_baselines(train, dev, schema, out, seed=seed)
    secs = time.perf_counter() - t0
    for name, entry in info.items():  # paths relative to the model directory, not this machine's
        entry["path"] = f"baselines/{name}"
    return {"dev": evaluate_baselines(out, dev, schema, n_boot=n_boot, seed=seed), "training": info}, secs


def _dev_block(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in DEV_BLOCK}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_card(
    model_dir: str | Path,
    extra: dict[str, Any] | None = None,
    *,
    clf: RuptureClassifier | None = None,
    metrics: dict[str, Any] | None = None,
    training_config: dict[str, Any] | None = None,
) -> Path:
    """Render the card of a model directory into its ``README.md`` (``clf``, ``metrics`` and
    ``training_config`` are read from the directory unless given; ``extra``: see ``render_card``)."""
    d = Path(model_dir)
    clf = clf or RuptureClassifier.from_pretrained(d)
    metrics = metrics if metrics is not None else json.loads((d / "metrics.json").read_text())
    tc = training_config if training_config is not None else json.loads((d / "training_config.json").read_text())
    atomic_write_text(d / "README.md", render_card(clf, metrics, tc, extra))
    return d / "README.md"


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------
def train_model(
    train_path: str | Path | Sequence[Session],
    dev_path: str | Path | Sequence[Session],
    out_dir: str | Path,
    *,
    schema: LabelSchema | str | Path | None = None,
    base: str | Path | None = None,
    epochs: int | None = None,
    seed: int = 13,
    config: TrainConfig | None = None,
    progress: ProgressCallback | None = None,
    card_extra: dict[str, Any] | None = None,
) -> TrainResult:
    """Train, select on dev, save to ``out_dir`` (with the baselines, ``metrics.json``,
    ``training_config.json`` and the card) and return the run's numbers.

    ``train_path``/``dev_path``: canonical JSONL files with gold labels (or lists of sessions);
    ``schema``: a schema or schema file (default 3RS); ``base``: a local HF model directory
    (default: the hash-checked all-MiniLM-L6-v2); ``config``: every other setting (``epochs`` and
    ``seed`` override it); ``progress``: a :mod:`rupture_nlp.progress` callback (stage ``"train"``);
    ``card_extra``: comparisons to show in the model card (see ``card.render_card``). Per-epoch
    summaries go to the ``rupture_nlp.model.train`` logger.
    """
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    cfg = config or TrainConfig()
    if epochs is not None:
        cfg.epochs = int(epochs)
    cfg.seed = int(seed)
    if cfg.epochs < 1 and cfg.arch != "session":
        raise RuptureError("epochs must be at least 1")
    if not isinstance(schema, LabelSchema):
        schema = load_schema(schema)
    out = Path(out_dir)
    train = load_split(train_path, schema, "training data")
    dev = load_split(dev_path, schema, "dev data")
    if not train or not dev:
        raise RuptureError("training and dev data must each hold at least one session")

    train_sessions = train + asr_renderings(train, cfg.asr_copies, cfg.seed)
    run = train_classifier(
        train_sessions,
        dev,
        out,
        schema,
        cfg,
        base=base,
        progress=progress,
        source=Path(train_path) if isinstance(train_path, (str, Path)) else None,
    )
    timings = {
        **run.timings,
        "model_seconds": round(time.perf_counter() - t_start, 1),
        "model_cpu_seconds": round(time.process_time() - cpu_start, 1),
    }
    baselines: dict[str, Any] = {"dev": {}, "training": None}
    if cfg.baselines:
        baselines, secs = _baselines_step(train, dev, schema, out, seed=cfg.seed, n_boot=cfg.n_boot)
        timings["baselines_seconds"] = round(secs, 1)
    timings["total_train_seconds"] = round(time.perf_counter() - t_start, 1)
    timings["total_cpu_seconds"] = round(time.process_time() - cpu_start, 1)

    metrics = _training_metrics(
        run,
        dev,
        schema,
        cfg,
        baselines,
        timings,
        {"train": describe_split(train_path, train, schema), "dev": describe_split(dev_path, dev, schema)},
    )
    _write_json(out / "metrics.json", metrics)
    tc = cfg.to_dict()
    tc.update(rupture_version=__version__, base=run.base.to_config(), data=metrics["data"])
    _write_json(out / "training_config.json", tc)
    write_card(out, card_extra, clf=run.clf, metrics=metrics, training_config=tc)
    f1 = metrics["dev_macro_f1"]
    return TrainResult(
        out, float(f1["fine"] or 0.0), float(f1["coarse"] or 0.0), run.best_epoch, run.history, timings, metrics
    )


def asr_renderings(sessions: Sequence[Session], copies: int, seed: int) -> list[Session]:
    """``copies`` ASR-style renderings of every session (:mod:`rupture_nlp.corpus.asr`, default
    settings; copy k of a session uses seed ``seed + k``), ids suffixed ``~asrK``: training
    augmentation, so the model meets lowercase, unpunctuated, time-cut, diarized text. Each
    rendering is then segmented as ``rupture tag`` would segment its WebVTT form
    (:func:`rupture_nlp.corpus.align.align_session`), as the corpus's ``asr/`` files are."""
    out = []
    for k in range(int(copies)):
        for s in sessions:
            r = render_session(s, AsrConfig(), seed=seed + k)
            r = align_session(r, vtt=to_vtt(r), speakers=speakers_spec(r))  # cut as the tagger would cut it
            r.session_id = f"{s.session_id}~asr{k + 1}"
            out.append(r)
    return out


def _training_metrics(
    run: TrainedClassifier,
    dev: list[Session],
    schema: LabelSchema,
    cfg: TrainConfig,
    baselines: dict[str, Any],
    timings: dict[str, float],
    data: dict[str, Any],
) -> dict[str, Any]:
    """``metrics.json`` of a training run: dev scores with CIs of the model (and the baselines)."""
    dev_eval = evaluate_predictions(
        dev, run.dev_probabilities, schema, run.dev_thresholds, n_boot=cfg.n_boot, seed=cfg.seed
    )
    return {
        "model_version": run.clf.model_version,
        "dev": _dev_block(dev_eval),
        "dev_macro_f1": macro_f1(dev_eval),
        "baselines": baselines,
        "training": {
            "best_epoch": run.best_epoch,
            "history": run.history,
            "timings": timings,
            "examples_seen": run.examples_seen,
            "examples_per_second": run.examples_per_second,
            **runtime_info(),
        },
        "data": data,
        "reproduce": reproduce_sample(dev, run.dev_probabilities),
    }


def compact_model(
    full_dir: str | Path,
    out_dir: str | Path,
    train: str | Path | Sequence[Session],
    dev: str | Path | Sequence[Session],
    *,
    rank: int = 64,
    dtype: str = "int8",
    n_boot: int = 1000,
    seed: int = 13,
    name: str | None = None,
    baselines: bool = True,
    card_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn a trained full model directory into its compact form in ``out_dir``, ready to use.

    ``train``/``dev``: the splits the full model was trained and selected on (files or sessions,
    read with the full model's schema). Writes the adapters (:func:`lora_from_full`; ``rank``,
    ``dtype``), thresholds re-tuned on dev for the compact weights, the baselines (trained afresh
    with ``seed``; without ``baselines`` those of ``full_dir`` are copied, if any),
    ``metrics.json`` with dev scores (bootstrap CIs with ``n_boot`` resamples) and the full
    model's for comparison, ``training_config.json`` and the card (``card_extra``; default: a
    note on the compact form). ``name``: the compact model's name (default: the full model's).
    Returns the new metrics.
    """
    t0 = time.perf_counter()
    full_dir, out = Path(full_dir), Path(out_dir)
    schema = load_schema(full_dir / "schema.yaml")
    train_s = load_split(train, schema, "training data")
    dev_s = load_split(dev, schema, "dev data")
    full_metrics = json.loads((full_dir / "metrics.json").read_text()) if (full_dir / "metrics.json").is_file() else {}
    clf, stats, P = _compact_step(full_dir, out, dev_s, rank=rank, dtype=dtype, name=name)
    res = evaluate_predictions(dev_s, P, clf.schema, clf.thresholds, n_boot=n_boot, seed=seed)
    t_compact = time.perf_counter() - t0
    metrics = {
        **full_metrics,
        "model_version": clf.model_version,
        "dev": _dev_block(res),
        "dev_macro_f1": macro_f1(res),
        "compact": {
            "method": "truncated SVD of the full fine-tuning's weight updates",
            **stats,
            "dtype": dtype,
            "full_dev_macro_f1": full_metrics.get("dev_macro_f1"),
            "full_model_version": full_metrics.get("model_version"),
        },
        "reproduce": reproduce_sample(dev_s, P),
    }
    timings = {"compact_seconds": round(t_compact, 1)}
    if baselines:
        metrics["baselines"], secs = _baselines_step(train_s, dev_s, clf.schema, out, seed=seed, n_boot=n_boot)
        timings["baselines_seconds"] = round(secs, 1)
    elif (full_dir / "baselines").is_dir():
        shutil.rmtree(out / "baselines", ignore_errors=True)
        shutil.copytree(full_dir / "baselines", out / "baselines")
    tr = metrics["training"] = dict(metrics.get("training") or {})
    tr["timings"] = {**(tr.get("timings") or {}), **timings}
    _write_json(out / "metrics.json", metrics)
    tc = (
        json.loads((full_dir / "training_config.json").read_text())
        if (full_dir / "training_config.json").is_file()
        else {}
    )
    tc["compact"] = {"method": "svd", "rank": rank, "dtype": dtype, "thresholds": "re-tuned on dev"}
    _write_json(out / "training_config.json", tc)
    write_card(
        out,
        card_extra if card_extra is not None else {"notes": [_compact_note(metrics, rank, dtype, stats)]},
        clf=clf,
        metrics=metrics,
        training_config=tc,
    )
    return metrics


def _compact_step(
    full_dir: Path, out: Path, dev: list[Session], *, rank: int, dtype: str, name: str | None
) -> tuple[RuptureClassifier, dict[str, Any], np.ndarray]:
    """The adapters in ``out`` (renamed to ``name``), thresholds re-tuned on dev and saved;
    returns (classifier, extraction statistics, its dev probabilities)."""
    shutil.rmtree(out / "encoder", ignore_errors=True)  # full weights of an earlier model in the same place
    clf, stats = lora_from_full(full_dir, out, rank, dtype)
    if name is not None and name != clf.config.name:
        clf.config.name = name
        atomic_write_text(out / "config.json", json.dumps(clf.config.to_dict(), indent=2) + "\n")
        clf = RuptureClassifier.from_pretrained(out)
    P = clf.predict_proba(dev)
    clf.thresholds = tune_model_thresholds(clf, label_matrix(dev, clf.schema), P)
    clf.save_thresholds(out)
    return clf, stats, P


def _compact_note(metrics: dict[str, Any], rank: int, dtype: str, stats: dict[str, Any]) -> str:
    full_f1 = metrics["compact"].get("full_dev_macro_f1") or {}

    def num(x: Any) -> str:
        return "–" if x is None else f"{float(x):.3f}"

    return (
        f"**Compact form.** The fully fine-tuned encoder's weight updates are stored as rank-{rank} LoRA "
        f"factors ({dtype}; {stats['energy_kept_mean']:.0%} of the updates' energy on average) over the base. "
        f"With thresholds re-tuned on dev: {metrics['dev_macro_f1']['fine']:.3f} fine / "
        f"{metrics['dev_macro_f1']['coarse']:.3f} coarse dev macro-F1; the full model had "
        f"{num(full_f1.get('fine'))} / {num(full_f1.get('coarse'))}."
    )


# ------------------------------------------------------------------------------------------
# evaluation of a model directory
# ------------------------------------------------------------------------------------------
def _read_schema_file(path: Path) -> LabelSchema | None:
    return load_schema(path) if path.is_file() else None


def _check_same_schema(a: LabelSchema, b: LabelSchema, what: str, where: Path) -> None:
    if a.label_ids != b.label_ids:
        only_a = sorted(set(a.label_ids) - set(b.label_ids))
        only_b = sorted(set(b.label_ids) - set(a.label_ids))
        detail = []
        if only_a:
            detail.append("missing " + ", ".join(only_a[:6]))
        if only_b:
            detail.append("extra " + ", ".join(only_b[:6]))
        raise RuptureError(
            f"{what} does not match the label schema "
            f"({'; '.join(detail) if detail else 'same labels in another order'})",
            where,
        )


def evaluate_model_dir(
    model_dir: str | Path,
    data_path: str | Path,
    *,
    schema: LabelSchema | str | Path | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
    baselines: Sequence[str] | None = None,
    on_step: Callable[[str], None] | None = None,
    backend: str = "torch",
) -> dict[str, Any]:
    """Evaluate the transformer (if ``model_dir`` has one) and every saved baseline on ``data_path``.

    The transformer is present when ``model_dir/config.json`` exists and is loaded with
    ``RuptureClassifier.from_pretrained`` (run by ``backend``, as ``rupture tag --backend``, so a
    backend's labels can be scored); baselines (``baselines``: some registered names, default
    all) are loaded from ``model_dir/baselines/<name>/``. All systems are scored on the same
    sessions and the same bootstrap resamples; ``baselines[name]["vs_model"]`` holds the paired
    bootstrap interval of (model - baseline) macro-F1 when the transformer is there. The schema is
    the model's own (``schema.yaml``); an explicit ``schema`` must match it. Raises RuptureError for
    a missing, empty, corrupt or mismatched model directory and for bad data. ``on_step``
    (optional) is called with a short message before each slow step (loading, predicting).

    Returns the transformer's result at the top level (``fine``, ``coarse``, ``session_icc``; None
    when the directory holds only baselines) plus ``baselines`` (``{name: {fine, coarse,
    session_icc, predict_seconds, vs_model}}``), ``model``, ``data``, ``schema`` and ``bootstrap``.
    """
    step = on_step or (lambda msg: None)
    mdir = Path(model_dir)
    if not mdir.exists():
        raise RuptureError("model directory not found", mdir)
    if not mdir.is_dir():
        raise RuptureError("not a directory (expected a model directory)", mdir)
    has_model = (mdir / "config.json").is_file()
    bdir = mdir / "baselines"
    names = list(baselines) if baselines is not None else baseline_names()
    present = [b for b in names if (bdir / b).is_dir()]
    if not has_model and not present:
        raise RuptureError(
            "not a rupture model directory: no config.json and no " + " or ".join(f"baselines/{b}" for b in names), mdir
        )

    # -- the schema: the model's own; everything else must agree with it
    model_schema = _read_schema_file(mdir / "schema.yaml")
    if has_model and model_schema is None:
        raise RuptureError("model directory lacks schema.yaml", mdir)
    explicit = schema if isinstance(schema, LabelSchema) else (load_schema(schema) if schema is not None else None)
    if explicit is not None and model_schema is not None:
        _check_same_schema(model_schema, explicit, "the --schema file", mdir / "schema.yaml")
    active = model_schema or explicit

    # each baseline's schema (cheap to read) before loading anything heavy
    for name in present:
        b_schema = _read_schema_file(bdir / name / "schema.yaml")
        if b_schema is None:
            raise RuptureError("baseline directory lacks schema.yaml", bdir / name)
        if active is None:
            active = b_schema
        else:
            _check_same_schema(active, b_schema, f"baseline '{name}'", bdir / name)
    assert active is not None
    sessions = load_gold_sessions(data_path, active)

    n_utt = sum(len(s.utterances) for s in sessions)
    loaded = {}
    for name in present:
        step(f"loading baseline {name}")
        loaded[name] = load_baseline(bdir / name)
    dpath = Path(data_path)
    kw = dict(n_boot=n_boot, seed=seed, level=level, return_samples=True)
    result: dict[str, Any] = {
        "model": {"dir": str(mdir), "present": has_model, "model_version": None, "backend": backend},
        "data": {"path": str(dpath), "sha256": file_sha256(dpath), "sessions": len(sessions), "utterances": n_utt},
        "schema": active.name,
        "fine": None,
        "coarse": None,
        "session_icc": None,
        "bootstrap": {"n": int(n_boot), "seed": int(seed), "level": float(level), "unit": "session"},
        "baselines": {},
    }
    model_res = None
    if has_model:
        step("loading the transformer")
        clf = RuptureClassifier.from_pretrained(mdir, backend=backend)
        _check_same_schema(active, clf.schema, "the transformer", mdir)
        step(f"transformer: predicting {n_utt} utterances")
        t0 = time.perf_counter()
        P = clf.predict_proba(sessions)
        secs = time.perf_counter() - t0
        model_res = evaluate_predictions(sessions, P, active, clf.thresholds, **kw)
        result["model"]["model_version"] = getattr(clf, "model_version", None)
        result["model"]["predict_seconds"] = round(secs, 3)
        for k in SYSTEM_BLOCK:
            result[k] = model_res[k]
    for name, b in loaded.items():
        step(f"baseline {name}: predicting {n_utt} utterances")
        t0 = time.perf_counter()
        P = b.predict_proba(sessions)
        secs = time.perf_counter() - t0
        res = evaluate_predictions(sessions, P, active, b.thresholds, **kw)
        entry = {k: res[k] for k in SYSTEM_BLOCK}
        entry["predict_seconds"] = round(secs, 3)
        if model_res is not None:
            entry["vs_model"] = {
                f"{lvl}_macro_f1_diff_ci": paired_difference(
                    model_res["_samples"][lvl]["macro_f1"], res["_samples"][lvl]["macro_f1"], level
                )
                for lvl in ("fine", "coarse")
            }
        result["baselines"][name] = entry
    return result
