"""CLI command ``rupture corpus render-asr``: labelled sessions as ASR + diarization output.

rupture corpus render-asr IN.jsonl --out OUT.jsonl [--vtt DIR] [--srt DIR] [--seed N] [knobs]
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Optional

import typer

from ..corpus.asr import AsrConfig
from .app import corpus_app, err_console

_D = AsrConfig()
_SAFE = re.compile(r"[A-Za-z0-9._-]+")


def _rate(name: str, what: str) -> typer.models.OptionInfo:
    return typer.Option(getattr(_D, name), f"--{name.replace('_', '-')}", min=0.0, max=1.0, help=what)


def subtitle_stem(session_id: str, used: set[str]) -> str:
    """The file name stem of a session's subtitle file: its id when that is a safe file name not
    used yet (also ignoring case), else a slug plus a short hash of the id."""
    stem = session_id if _SAFE.fullmatch(session_id) and not session_id.startswith(".") else ""
    if not stem or stem.casefold() in used:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", session_id).strip("._-")[:80] or "session"
        stem = f"{slug}-{hashlib.sha256(session_id.encode('utf-8')).hexdigest()[:10]}"
    used.add(stem.casefold())
    return stem


def _subtitle_dir(path: Optional[Path]) -> Optional[Path]:
    from ..errors import RuptureError

    if path is not None and path.exists() and not path.is_dir():
        raise RuptureError("exists and is not a folder; --vtt/--srt take a folder", path)
    return path


@corpus_app.command("render-asr")
def render_asr(
    input: Path = typer.Argument(
        ...,
        metavar="IN.jsonl",
        dir_okay=False,
        help="Canonical session JSONL (labelled sessions, e.g. corpora/dev.jsonl).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Canonical JSONL of the ASR segments to write (atomically)."),
    vtt: Optional[Path] = typer.Option(
        None, "--vtt", metavar="DIR", help="Also write DIR/<session_id>.vtt per session."
    ),
    srt: Optional[Path] = typer.Option(
        None, "--srt", metavar="DIR", help="Also write DIR/<session_id>.srt per session."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same output."),
    lowercase_session_rate: float = _rate("lowercase_session_rate", "Probability of lowercasing a whole session."),
    lowercase_segment_rate: float = _rate("lowercase_segment_rate", "Probability of lowercasing one segment."),
    punct_drop_rate: float = _rate("punct_drop_rate", "Probability of dropping a word's trailing punctuation."),
    filler_rate: float = _rate("filler_rate", "Probability of a filler (um, uh, like, you know) before a word."),
    false_start_rate: float = _rate("false_start_rate", "Probability of a false start per source utterance."),
    confusion_rate: float = _rate("confusion_rate", "Probability of misrecognising a confusable word or phrase."),
    speaker_error_rate: float = _rate(
        "speaker_error_rate", "Probability of giving an unlabelled segment to the other speaker."
    ),
    min_segment: float = typer.Option(_D.min_segment_s, "--min-segment", help="Shortest segment duration (s)."),
    max_segment: float = typer.Option(_D.max_segment_s, "--max-segment", help="Longest segment duration (s)."),
    words_per_second: float = typer.Option(
        _D.words_per_second, "--words-per-second", help="Speech rate for synthetic times of sessions without times."
    ),
    keep_events: bool = typer.Option(
        False, "--keep-events", help="Keep bracketed events (laughter, pauses, ...) instead of dropping them."
    ),
) -> None:
    """Render labelled sessions as speech recognition + diarization would deliver them.

    Lower case and lost punctuation, fillers, false starts, misrecognised words, segments cut by
    time (not sentence), SPEAKER_00/SPEAKER_01 names with a few misattributed (unlabelled)
    segments; gold labels carried over to the segments (source utterance ids in ``source_ids``).
    """
    from ..atomic import atomic_write, atomic_write_text
    from ..corpus.asr import render_sessions, to_srt, to_vtt
    from ..errors import RuptureError
    from ..locking import output_lock
    from ..records import read_sessions

    config = AsrConfig(
        lowercase_session_rate=lowercase_session_rate,
        lowercase_segment_rate=lowercase_segment_rate,
        punct_drop_rate=punct_drop_rate,
        filler_rate=filler_rate,
        false_start_rate=false_start_rate,
        confusion_rate=confusion_rate,
        min_segment_s=min_segment,
        max_segment_s=max_segment,
        speaker_error_rate=speaker_error_rate,
        words_per_second=words_per_second,
        drop_events=not keep_events,
    )
    vtt, srt = _subtitle_dir(vtt), _subtitle_dir(srt)
    if out.exists() and input.exists() and out.resolve() == input.resolve():
        raise RuptureError("the output file is also the input; choose another --out", out)
    n_sessions = n_units = 0
    seen: set[str] = set()
    stems: set[str] = set()
    with output_lock(out, vtt, srt), atomic_write(out) as f:
        for session in render_sessions(_unique(read_sessions(input), seen, input), config, seed):
            f.write(session.to_json() + "\n")
            stem = subtitle_stem(session.session_id, stems) if (vtt or srt) else ""
            for folder, ext, render in ((vtt, "vtt", to_vtt), (srt, "srt", to_srt)):
                if folder is not None:
                    atomic_write_text(folder / f"{stem}.{ext}", render(session))
            n_sessions += 1
            n_units += len(session.utterances)
        if not n_sessions:
            raise RuptureError("no sessions in this file; nothing written", input)
    err_console.print(
        f"rendered {n_sessions} session(s) into {n_units} ASR segments (seed {seed}) in {out}"
        + "".join(f"; {k} files in {d}" for k, d in (("WebVTT", vtt), ("SRT", srt)) if d),
        markup=False,
    )


def _unique(sessions, seen: set[str], path: Path):
    """The sessions, failing on a session id seen before in the file (its files would clash)."""
    from ..errors import RuptureError

    for s in sessions:
        if s.session_id in seen:
            raise RuptureError(f"session id {s.session_id!r} appears twice; session ids must be unique", path)
        seen.add(s.session_id)
        yield s
