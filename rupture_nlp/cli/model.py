"""CLI commands: ``rupture train`` and ``rupture tag`` (thin layers over the Python API)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..baselines import baseline_names
from ..errors import RuptureError
from .app import (
    Arch,
    Backend,
    Engine,
    Pooling,
    SchemaOption,
    Weights,
    app,
    console,
    err_console,
    expand_inputs,
    report_error,
    run_files,
)
from .segment import FormatOption, SpeakersFromFirstOption, SpeakersOption, StrictOption, speakers_option


def _model_dir(model: Optional[Path]) -> Path:
    if model is not None:
        return model
    from ..resources import default_model_dir

    return default_model_dir()


@app.command()
def train(
    train_file: Path = typer.Option(..., "--train", help="Training split: canonical JSONL with gold labels."),
    dev_file: Path = typer.Option(..., "--dev", help="Dev split (early stopping, thresholds): canonical JSONL."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    schema: Optional[Path] = SchemaOption,
    base: Optional[str] = typer.Option(
        None,
        "--base",
        help="Local Hugging Face model directory to fine-tune (default: the hash-checked all-MiniLM-L6-v2).",
    ),
    epochs: Optional[int] = typer.Option(
        None,
        "--epochs",
        min=1,
        help="Maximum epochs of fine-tuning the encoder (default: 2 for --arch session, 4 for cross).",
    ),
    seed: int = typer.Option(13, "--seed", help="Random seed (sampling, initialisation, dropout)."),
    arch: Arch = typer.Option(
        Arch.session,
        "--arch",
        help="'session' (each utterance read once, then a dialogue "
        "encoder over the session; the bundled model's) or 'cross' (utterance + preceding "
        "context as a text pair).",
    ),
    freeze_encoder: bool = typer.Option(
        False,
        "--freeze-encoder",
        help="--arch session: keep the base encoder as it is and train only the dialogue head (minutes, weaker).",
    ),
    head_epochs: int = typer.Option(12, "--head-epochs", min=1, help="--arch session: epochs of the dialogue head."),
    joint_epochs: int = typer.Option(
        0,
        "--joint-epochs",
        min=0,
        help="--arch session: epochs fine-tuning encoder and dialogue head together after the head "
        "(labelled utterances and a sample of the others re-encoded in their windows); 0: none.",
    ),
    window: int = typer.Option(64, "--window", min=4, help="--arch session: utterances per dialogue window."),
    hidden: int = typer.Option(
        256, "--hidden", min=1, help="--arch session: GRU units per direction in the dialogue head."
    ),
    asr_copies: int = typer.Option(
        1,
        "--asr-copies",
        min=0,
        help="ASR-style renderings of each training session "
        "added to the training data (lowercase, sparse punctuation, fillers, misheard "
        "words, time-cut segments, diarization labels); 0: none.",
    ),
    weights: Weights = typer.Option(
        Weights.full,
        "--weights",
        help="'full' fine-tuning (embeddings frozen; the bundled "
        "model's recipe) or 'lora' (trained adapters, small but weaker).",
    ),
    pooling: Pooling = typer.Option(
        Pooling.mean, "--pooling", help="'mean' (mean-pooled tokens) or 'cls' ([CLS] pooler)."
    ),
    context: int = typer.Option(3, "--context", min=0, help="--arch cross: preceding utterances given as context."),
    max_length: Optional[int] = typer.Option(
        None, "--max-length", min=16, help="Maximum tokens per input (default: 64 for --arch session, 128 for cross)."
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    unlabelled_ratio: float = typer.Option(
        1.5,
        "--unlabelled-ratio",
        min=0.0,
        help="Unlabelled utterances sampled per labelled one each epoch (0: none; use --all-unlabelled for all).",
    ),
    all_unlabelled: bool = typer.Option(False, "--all-unlabelled", help="Use every unlabelled utterance every epoch."),
    no_pause: bool = typer.Option(False, "--no-pause", help="Do not give the model the pause before an utterance."),
    baselines: bool = typer.Option(
        True, "--baselines/--no-baselines", help=f"Also train the baselines ({', '.join(baseline_names())})."
    ),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name (default: the --out directory name)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the dev CIs."),
    compact: int = typer.Option(
        0,
        "--compact",
        min=0,
        metavar="RANK",
        help="With --weights full: write the compact form instead (the weight updates as "
        "rank-RANK int8 LoRA factors, a few MB, as the bundled model; 64 keeps it "
        "within about a point of the full model there). 0: the full model (~90 MB).",
    ),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", min=1, hidden=True, help="Stop after this many optimiser steps (smoke tests)."
    ),
) -> None:
    """Fine-tune the rupture classifier on a train split, select on dev, save a model directory
    (weights, tokenizer, schema, thresholds, metrics, model card) with the baselines."""
    # here, not at the top: torch and transformers load only when a command needs them
    from ..model.architectures import session_input_config
    from ..model.inputs import InputConfig
    from ..model.session import SessionConfig
    from ..model.session_train import HeadTrainConfig, JointTrainConfig
    from ..model.train import TrainConfig
    from ..workflow import compact_model, train_model
    from .app import ProgressDisplay, load_schema_option

    weights, pooling, arch = Weights(weights).value, Pooling(pooling).value, Arch(arch).value
    if epochs is None:
        epochs = 2 if arch == "session" else 4
    if arch == "session":
        inputs = session_input_config(max_length or 64)
    else:
        inputs = InputConfig(
            context=context, max_length=max_length or 128, pause_marker=not no_pause, pause_feature=not no_pause
        )
    try:
        cfg = TrainConfig(
            name=name or out.resolve().name,
            arch=arch,
            weights=weights,
            pooling=pooling,
            input=inputs,
            freeze_encoder=freeze_encoder,
            head=HeadTrainConfig(epochs=head_epochs, seed=seed),
            joint=JointTrainConfig(epochs=joint_epochs, seed=seed),
            session=SessionConfig(window=window, hidden=hidden),
            asr_copies=asr_copies,
            batch_size=batch_size,
            unlabelled_ratio=None if all_unlabelled else unlabelled_ratio,
            baselines=baselines and not compact,
            threads=threads,
            n_boot=0 if compact else bootstrap,
            max_steps=max_steps,
        )
    except ValueError as e:  # settings that do not go together (TrainConfig validates itself)
        raise RuptureError(f"rupture train: {e}") from None
    if compact and weights != "full":
        raise RuptureError("--compact needs --weights full (it compresses a full fine-tuning)")
    import shutil

    target = out.with_name(f".{out.name}.full") if compact else out
    if compact:
        shutil.rmtree(target, ignore_errors=True)
    try:
        with ProgressDisplay() as show:
            res = train_model(
                train_file,
                dev_file,
                target,
                schema=load_schema_option(schema),
                base=base,
                epochs=epochs,
                seed=seed,
                config=cfg,
                progress=show,
            )
        metrics = res.metrics
        if compact:  # the baselines and dev CIs come with the compact form
            metrics = compact_model(
                target, out, train_file, dev_file, rank=compact, n_boot=bootstrap, seed=seed, baselines=baselines
            )
    finally:
        if compact:
            shutil.rmtree(target, ignore_errors=True)
    b = (metrics.get("baselines") or {}).get("dev") or {}
    console.print(
        f"wrote {out} ({metrics['model_version']}); best epoch {res.best_epoch}; "
        f"{res.timings['model_seconds'] / 60:.1f} min",
        markup=False,
        soft_wrap=True,
    )
    fine, coarse = metrics["dev_macro_f1"]["fine"] or 0.0, metrics["dev_macro_f1"]["coarse"] or 0.0
    console.print(
        f"dev macro-F1 fine {fine:.3f}, coarse {coarse:.3f}"
        + (
            f" (compact, rank {compact}; full model {res.dev_macro_f1:.3f} / {res.dev_coarse_macro_f1:.3f})"
            if compact
            else ""
        ),
        markup=False,
        soft_wrap=True,
    )
    for n, r in b.items():
        console.print(
            f"  baseline {n}: fine {r['fine']['macro']['f1']:.3f}, coarse {r['coarse']['macro']['f1']:.3f}",
            markup=False,
        )


@app.command()
def tag(
    inputs: List[Path] = typer.Argument(
        ..., help="Transcript files or folders (txt, timestamped txt, csv/tsv, vtt, srt, canonical jsonl)."
    ),
    out: Path = typer.Option(..., "--out", help="Tagged sessions: canonical JSONL."),
    model: Optional[Path] = typer.Option(
        None,
        "--model",
        help="Model directory (default: $RUPTURE_MODEL, else the default model shipped with rupture-nlp).",
    ),
    csv: Optional[Path] = typer.Option(
        None, "--csv", help="Also write one row per utterance with one score column per label (for R/SPSS)."
    ),
    format: Optional[str] = FormatOption,
    speakers: Optional[str] = SpeakersOption,
    speakers_from_first: bool = SpeakersFromFirstOption,
    strict: bool = StrictOption,
    resume: bool = typer.Option(
        True, "--resume/--restart", help="Continue an interrupted run (default) or start over."
    ),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    batch: int = typer.Option(512, "--batch-utterances", min=1, help="Utterances per prediction batch (memory)."),
    engine: Engine = typer.Option(
        Engine.local,
        "--engine",
        help="'local': this process; 'ray': a Ray cluster (files "
        "read in parallel tasks, predictions by a pool of actors; docs/scale-out.md).",
    ),
    address: Optional[str] = typer.Option(
        None,
        "--address",
        help="With --engine ray: the cluster to join ('auto', "
        "HOST:PORT or ray://HOST:PORT; default: start Ray on this machine).",
    ),
    workers: Optional[int] = typer.Option(
        None, "--workers", min=1, help="With --engine ray: prediction actors (default: the cluster's CPUs / --threads)."
    ),
    batch_size: int = typer.Option(
        1, "--batch-size", min=1, help="With --engine ray: prediction batches (of --batch-utterances) per actor call."
    ),
    backend: Backend = typer.Option(
        Backend.torch,
        "--backend",
        help="'torch' (default); 'openvino': the network converted by OpenVINO at load (about 2 s) and "
        "run in float32 — the same scores, little faster; 'openvino-int8': converted and quantised to int8 "
        "at load (10-20 s, calibrated on the package's own text) — about twice as fast, labels within a "
        "point of F1 (see the model card).",
    ),
) -> None:
    """Tag every utterance of the inputs with labels and scores. Bad files are reported and
    skipped (exit status 1); an interrupted run resumes where it stopped, under either engine.
    With --engine ray, --threads is torch threads per actor (default 1)."""
    from ..readers.speakers import parse_speakers
    from ..tagging import TagInterrupted, journal_path, tag_files
    from .app import ProgressDisplay

    speakers = speakers_option(speakers, speakers_from_first)
    parse_speakers(speakers)  # bad options fail before any file or model is touched
    engine = Engine(engine).value
    if engine == "local" and (address is not None or workers is not None):
        raise RuptureError("--address and --workers need --engine ray")
    files = expand_inputs(inputs, exclude=run_files(out, csv))
    if not files:
        raise RuptureError("no input files found")
    model_dir = _model_dir(model)
    try:
        with ProgressDisplay() as show:
            rep = tag_files(
                files,
                model_dir,
                out,
                csv,
                format=format,
                speakers=speakers,
                strict=strict,
                batch_utterances=batch,
                resume=resume,
                threads=threads,
                progress=show,
                engine=engine,
                address=address,
                workers=workers,
                batch_size=batch_size,
                backend=Backend(backend).value,
            )
    except TagInterrupted as e:
        report_error(
            RuptureError(
                f"interrupted; {e.report.sessions} session(s) kept in {journal_path(out)}, "
                "rerun the same command to resume"
            )
        )
        raise typer.Exit(130) from None
    for _path, msg in rep.failed:
        report_error(RuptureError(msg))
    if rep.sessions == 0 and rep.failed:
        err_console.print(
            f"nothing written: all {len(rep.failed)} file(s) failed"
            + (f"; {out} left as it was" if out.exists() else ""),
            markup=False,
        )
        raise typer.Exit(1)
    console.print(
        f"wrote {out}" + (f" and {csv}" if csv else "") + f": {rep.sessions} session(s) from "
        f"{rep.files - len(rep.failed)} file(s)"
        + (f" ({rep.resumed_sessions} resumed from the interrupted run)" if rep.resumed_sessions else "")
        + f", model {rep.model_version}, {rep.seconds:.1f} s",
        markup=False,
        soft_wrap=True,
    )
    if rep.failed:
        err_console.print(f"{len(rep.failed)} file(s) failed", markup=False)
        raise typer.Exit(1)
