"""ASR renderings: a labelled session as speech recognition plus diarization would deliver it.

:func:`render_session` turns canonical utterances (authored, punctuated, one per sentence-like
line) into ASR-style segments, deterministically for a given ``(seed, session_id)``:

* **words**: bracketed events (``[laughs]``), ``--`` interruption dashes and quotation marks are
  not heard and are dropped (an utterance that would lose every word keeps its events if it is
  labelled, else it disappears); misrecognitions from the hand-written table
  ``data/asr_confusions.txt`` (homophones, contractions, function words, digits, spelling);
  fillers (``um``, ``uh``, ``you know``, ``like``) and false starts (``I- I think``);
* **punctuation and case**: trailing punctuation dropped at a rate (a dropped ``. ? !``
  lowercases the next word, except ``I``/``I'm``...); the whole session, or single segments,
  lowercased at a rate;
* **segments cut by time**: each word gets times interpolated (by length) within its source
  utterance's ``start``/``end`` (a dropped event keeps its share as silence, the words around
  it taking at most ``words_per_second``); within a turn (consecutive utterances of one speaker) words
  are grouped into segments of a duration drawn per segment from ``[min_segment_s,
  max_segment_s]`` seconds. A turn is first split into *parts* at silences longer than
  ``pause_cut_s`` and before each labelled utterance that shares a label with an earlier
  utterance of its part (so no label is merged away); segments never cross a part. A part
  shorter than the drawn duration is one segment, and the last segment of a part is not left
  shorter than ``min_segment_s`` when moving a cut avoids it. So segments shorter than
  ``min_segment_s`` are whole parts (short turns, answers between pauses), barring the rare
  part whose pauses leave no such cut; only a single word longer than ``max_segment_s`` exceeds it;
* **labels** go to the segments by :func:`~rupture_nlp.corpus.align.project_labels` (each
  labelled source utterance to exactly one segment); each segment records ``source_ids``;
* **diarization**: ``speaker_name`` is ``SPEAKER_00``/``SPEAKER_01`` (which role is 00 is
  drawn per session), and a rate of segments is given to the other speaker, ``speaker`` (the
  role) following. Only **unlabelled** segments are ever misattributed, so no label lands on a
  speaker role the schema does not allow.

Output: ids ``{session_id}-u0001``..., turns renumbered at every change of attributed speaker,
``start``/``end`` in seconds rounded to ms, ``labels`` (None when the source had none) and
``source_ids``; scores and other fields of the source utterances are not carried over. Meta is
the source's plus ``units: "asr"`` and ``rendering: {kind, seed, config, times}``; ``times`` is
``"synthetic"`` when the source lacked times and they were made from word counts
(``words_per_second``) first, else ``"source"``.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import RuptureError
from ..records import Session, Utterance
from .align import has_content, project_labels

SPEAKER_NAMES = ("SPEAKER_00", "SPEAKER_01")
CONFUSIONS_PATH = Path(__file__).resolve().parent.parent / "data" / "asr_confusions.txt"
#: Fillers inserted before words, with their relative weights.
FILLERS = (("um", 4), ("uh", 3), ("like", 2), ("you know", 1))
_PUNCT = ",.?!;:…"
_SENTENCE_END = ".?!…"
_EVENT = r"\[[^\]]*\]|\([^)]*\)"
_EVENT_SPLIT, _IS_EVENT = re.compile(f"({_EVENT})"), re.compile(_EVENT)
_UNHEARD = re.compile(r"--+|—|[\"“”]")
_KEEP_CASE = re.compile(r"^I(?:'[a-z]+)?\b")  # I, I'm, I'll, I've, I'd
#: Gap (seconds) between utterances when times are synthetic.
SYNTHETIC_GAP_S = 0.3


@dataclass(frozen=True)
class AsrConfig:
    """Every knob of the rendering. Rates are probabilities in [0, 1]; durations are seconds."""

    #: probability that the whole session is lowercased
    lowercase_session_rate: float = 0.25
    #: probability that one segment is lowercased (sessions not lowercased as a whole)
    lowercase_segment_rate: float = 0.10
    #: probability that a word's trailing punctuation (, . ? ! ; : …) is dropped
    punct_drop_rate: float = 0.70
    #: probability of a filler before each word
    filler_rate: float = 0.03
    #: probability of a false start (first word or two said twice) per source utterance
    false_start_rate: float = 0.04
    #: probability that a word or phrase in the confusion table is misrecognised
    confusion_rate: float = 0.10
    #: segment durations are drawn uniformly from [min_segment_s, max_segment_s]
    min_segment_s: float = 1.5
    max_segment_s: float = 7.0
    #: a silence longer than this always ends a segment (voice activity detection)
    pause_cut_s: float = 2.0
    #: probability that an unlabelled segment is attributed to the other speaker
    speaker_error_rate: float = 0.03
    #: speech rate (words/s) for synthetic times of sessions without times, and the most the
    #: words of an utterance with events take (the events take the rest, as silence)
    words_per_second: float = 2.6
    #: drop bracketed events ([laughs]) as recognisers do (kept only where a labelled
    #: utterance would otherwise have no words)
    drop_events: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "drop_events":
                if not isinstance(v, bool):
                    raise RuptureError(f"asr config: drop_events must be true or false, not {v!r}")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise RuptureError(f"asr config: {f.name} must be a number, not {v!r}")
            elif f.name.endswith("_rate") and not 0.0 <= v <= 1.0:
                raise RuptureError(f"asr config: {f.name} must be in [0, 1], got {v}")
            elif not f.name.endswith("_rate") and v <= 0:
                raise RuptureError(f"asr config: {f.name} must be positive, got {v}")
        if self.max_segment_s <= self.min_segment_s:
            raise RuptureError(
                f"asr config: max_segment_s ({self.max_segment_s}) must be greater than "
                f"min_segment_s ({self.min_segment_s})"
            )


@lru_cache(maxsize=1)
def confusions() -> dict[tuple[str, ...], tuple[str, ...]]:
    """The confusion table: lowercase word tuple -> its possible outputs (in file order)."""
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    for line in CONFUSIONS_PATH.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            heard, written = (s.strip() for s in line.split("->"))
            key = tuple(heard.lower().split())
            table[key] = table.get(key, ()) + (written,)
    return table


@dataclass(slots=True)
class _Word:
    """One output word (or filler, or kept event): its text, source utterance index, times (s)."""

    text: str
    src: int
    start: float = 0.0
    end: float = 0.0


def _core(tok: str) -> str:
    return tok.rstrip(_PUNCT).lower()


def _tokens(text: str) -> list[str]:
    """The tokens of an utterance: bracketed events (one token each) and the words as heard,
    without ``--`` dashes, quotes, and tokens left without a letter or digit."""
    out: list[str] = []
    for i, part in enumerate(_EVENT_SPLIT.split(text)):
        if i % 2:
            out.append(part)
        else:
            out += [t for t in _UNHEARD.sub(" ", part).split() if any(c.isalnum() for c in t)]
    return out


def _match_case(heard: str, written: str, sentence_start: bool) -> str:
    """``written`` capitalised like ``heard`` (I, I'm... count as capitalised at a sentence start only)."""
    if _KEEP_CASE.match(written) or not heard[:1].isupper() or (_KEEP_CASE.match(heard) and not sentence_start):
        return written
    return written[:1].upper() + written[1:] if not written.startswith("'") else written


def _confuse(toks: list[str], rng: random.Random, rate: float) -> list[str]:
    """Replace table phrases (longest first, not across punctuation) at ``rate``."""
    table, out, i = confusions(), [], 0
    while i < len(toks):
        for n in (3, 2, 1):
            part = toks[i : i + n]
            if len(part) < n or any(t[-1:] in _PUNCT for t in part[:-1]):
                continue
            key = tuple(_core(t) for t in part)
            if key in table and rng.random() < rate:
                written = rng.choice(table[key])
                trail = part[-1][len(part[-1].rstrip(_PUNCT)) :]
                at_start = not out or out[-1][-1:] in _SENTENCE_END
                out += (_match_case(part[0], written, at_start) + trail).split()
                i += n
                break
        else:
            out.append(toks[i])
            i += 1
    return out


def _lower_first(tok: str) -> str:
    return tok if _KEEP_CASE.match(tok) else tok[:1].lower() + tok[1:]


def _disfluent(toks: list[str], rng: random.Random, cfg: AsrConfig) -> list[str]:
    """A false start at the beginning (at ``false_start_rate``) and fillers before words."""
    if toks and rng.random() < cfg.false_start_rate and toks[0].rstrip(_PUNCT).replace("'", "").isalpha():
        n = 2 if len(toks) > 2 and rng.random() < 0.3 and toks[0][-1:] not in _PUNCT else 1
        toks = [*toks[: n - 1], toks[n - 1].rstrip(_PUNCT) + "-", _lower_first(toks[0]), *toks[1:]]
    out: list[str] = []
    names, weights = zip(*FILLERS)
    for i, t in enumerate(toks):
        if rng.random() < cfg.filler_rate:
            filler = rng.choices(names, weights)[0]
            if i == 0 and t[:1].isupper():
                filler, t = filler.capitalize(), _lower_first(t)
            out.append(filler)
        out.append(t)
    return out


def _drop_punct(words: list[_Word], rng: random.Random, rate: float) -> None:
    """Drop trailing punctuation at ``rate`` over a turn's words, in place; a dropped sentence
    end lowercases the next word."""
    lower_next = False
    for w in words:
        if lower_next:
            w.text, lower_next = _lower_first(w.text), False
        bare = w.text.rstrip(_PUNCT)
        if bare != w.text and bare and rng.random() < rate:
            lower_next = any(c in _SENTENCE_END for c in w.text[len(bare) :])
            w.text = bare


def _timed(toks: list[str], src: int, start: float, end: float, wps: float) -> list[_Word]:
    """Tokens with times covering ``[start, end]`` (s): words share it in proportion to their
    length + 1; when there are events, words take at most ``wps`` words per second and the
    events (silence to a recogniser) the rest, in equal shares."""
    is_event = [bool(_IS_EVENT.fullmatch(t)) for t in toks]
    n_events, span = sum(is_event), max(0.0, end - start)
    weights = [len(t) + 1 for t in toks]
    word_weight = sum(w for w, e in zip(weights, is_event) if not e)
    if n_events and word_weight:
        word_span = min(span, (len(toks) - n_events) / wps)
        durs = [(span - word_span) / n_events if e else word_span * w / word_weight for w, e in zip(weights, is_event)]
    else:
        durs = [span * w / sum(weights) for w in weights]
    out, t = [], start
    for tok, d in zip(toks, durs):
        out.append(_Word(tok, src, t, t + d))
        t += d
    out[-1].end = end if span else start
    return out


def _parts(words: list[_Word], labels: list[list[str]], pause: float) -> list[list[_Word]]:
    """A turn's words split at silences longer than ``pause`` seconds and before each labelled
    utterance that shares a label with an earlier one since the last such split (so that no
    segment holds two utterances with a common label)."""
    parts: list[list[_Word]] = []
    seen: set[str] = set()
    for k, w in enumerate(words):
        lab = set(labels[w.src]) if not k or w.src != words[k - 1].src else set()
        label_cut = bool(lab & seen)
        if not k or label_cut or w.start - words[k - 1].end > pause:
            parts.append([])
        seen = (set() if label_cut else seen) | lab
        parts[-1].append(w)
    return parts


def _cut_by_time(words: list[_Word], rng: random.Random, lo: float, hi: float) -> list[list[_Word]]:
    """Words grouped into segments lasting a duration drawn from ``[lo, hi]`` s each, the last
    one not left under ``lo`` where moving a cut avoids it (see the module docstring)."""
    end_all, segs, i, n = words[-1].end, [], 0, len(words)
    while i < n:
        d, s = rng.uniform(lo, hi), words[i].start
        j = i
        while j + 1 < n and (words[j + 1].end - s <= d or (words[j].end - s < lo and words[j + 1].end - s <= hi)):
            j += 1  # up to the drawn duration, or past it to reach the minimum
        if j + 1 < n and end_all - words[j + 1].start < lo:
            if end_all - s <= hi:
                j = n - 1  # the rest is too short for a segment of its own: take it
            else:
                while j > i and end_all - words[j + 1].start < lo and words[j - 1].end - s >= lo:
                    j -= 1  # cut earlier so that the rest reaches the minimum
        segs.append(words[i : j + 1])
        i = j + 1
    return segs


def _timed_copy(session: Session, wps: float) -> Session:
    """The session with synthetic times: each utterance lasts its word count / ``wps`` seconds
    (at least one word), with :data:`SYNTHETIC_GAP_S` between utterances."""
    t, utts = 0.0, []
    for u in session.utterances:
        dur = max(1, len(u.text.split())) / wps
        utts.append(
            Utterance(
                id=u.id,
                turn=u.turn,
                speaker=u.speaker,
                text=u.text,
                start=round(t, 3),
                end=round(t + dur, 3),
                labels=u.labels,
            )
        )
        t += dur + SYNTHETIC_GAP_S
    return Session(session.session_id, utts, dict(session.meta), dict(session.extra))


def render_session(session: Session, config: AsrConfig = AsrConfig(), seed: int = 0) -> Session:
    """The ASR rendering of ``session`` (see the module docstring); a new Session, the input is
    not changed. The same ``(config, seed, session)`` always gives the same result."""
    rng = random.Random(f"{seed}:{session.session_id}")
    synthetic = any(u.start is None or u.end is None for u in session.utterances)
    src = _timed_copy(session, config.words_per_second) if synthetic else session
    utts = src.utterances
    labels = [list(u.labels or []) for u in utts]
    lower_session = rng.random() < config.lowercase_session_rate
    names = dict(zip(("therapist", "client"), SPEAKER_NAMES if rng.random() < 0.5 else SPEAKER_NAMES[::-1]))
    segs: list[list[_Word]] = []
    turn: list[_Word] = []
    for k, u in enumerate(utts):
        toks = _tokens(u.text) or (u.text.split() if labels[k] else [])
        heard = [t for t in toks if not _IS_EVENT.fullmatch(t)]
        if toks and (heard or labels[k] or not config.drop_events):  # else nothing is heard: it disappears
            toks = _disfluent(_confuse(toks, rng, config.confusion_rate), rng, config)
            words = _timed(toks, k, float(u.start), float(u.end), config.words_per_second)
            drop = config.drop_events and heard  # a labelled utterance of events only keeps them
            turn += [w for w in words if not (drop and _IS_EVENT.fullmatch(w.text))]
        if turn and (k + 1 == len(utts) or utts[k + 1].speaker != u.speaker):
            _drop_punct(turn, rng, config.punct_drop_rate)
            for part in _parts(turn, labels, config.pause_cut_s):
                segs += _cut_by_time(part, rng, config.min_segment_s, config.max_segment_s)
            turn = []
    texts = []
    for seg in segs:
        text = " ".join(w.text for w in seg)
        texts.append(text.lower() if lower_session or rng.random() < config.lowercase_segment_rate else text)
    sources = [sorted({w.src for w in seg}) for seg in segs]
    try:
        new_labels = project_labels(labels, sources, [has_content(t) for t in texts])
    except ValueError as e:  # cannot happen: labelled utterances always keep a word
        raise RuptureError(f"ASR rendering lost labels: {e}", session.session_id) from None
    labelled = any(u.labels is not None for u in utts)
    out: list[Utterance] = []
    for n, (seg, text, srcs, lab) in enumerate(zip(segs, texts, sources, new_labels), 1):
        role = utts[srcs[0]].speaker
        if not lab and rng.random() < config.speaker_error_rate:
            role = "client" if role == "therapist" else "therapist"
        turn_no = out[-1].turn + (out[-1].speaker != role) if out else 0
        out.append(
            Utterance(
                id=f"{session.session_id}-u{n:04d}",
                turn=turn_no,
                speaker=role,
                speaker_name=names[role],
                text=text,
                start=round(seg[0].start, 3),
                end=round(seg[-1].end, 3),
                labels=lab if labelled else None,
                extra={"source_ids": [utts[i].id for i in srcs]},
            )
        )
    meta = {
        **session.meta,
        "units": "asr",
        "rendering": {
            "kind": "asr",
            "seed": seed,
            "config": asdict(config),
            "times": "synthetic" if synthetic else "source",
        },
    }
    return Session(session.session_id, out, meta, dict(session.extra))


def render_sessions(sessions: Iterable[Session], config: AsrConfig = AsrConfig(), seed: int = 0) -> Iterator[Session]:
    """:func:`render_session` over a stream of sessions, one at a time (bounded memory)."""
    for s in sessions:
        yield render_session(s, config, seed)


def speakers_spec(session: Session) -> str:
    """The ``--speakers`` mapping that reads a rendered session's VTT/SRT back into its roles,
    e.g. ``"SPEAKER_00=client,SPEAKER_01=therapist"``."""
    pairs = dict.fromkeys(f"{u.speaker_name}={u.speaker}" for u in session.utterances)
    return ",".join(sorted(pairs))


def _clock(t: float, sep: str) -> str:
    ms = round(t * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    return f"{h:02d}:{m:02d}:{rem // 1000:02d}{sep}{rem % 1000:03d}"


def _cues(session: Session) -> Iterator[tuple[int, Utterance]]:
    for n, u in enumerate(session.utterances, 1):
        if u.start is None or u.end is None or not u.speaker_name:
            raise RuptureError(
                f"utterance {u.id} has no times or speaker name; subtitles need both", session.session_id
            )
        yield n, u


def to_vtt(session: Session) -> str:
    """WebVTT: one cue per segment, ``<v SPEAKER_00>`` voice tags, times to the millisecond."""
    lines = ["WEBVTT", ""]
    for _n, u in _cues(session):
        text = u.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        lines += [f"{_clock(u.start, '.')} --> {_clock(u.end, '.')}", f"<v {u.speaker_name}>{text}", ""]
    return "\n".join(lines)


def to_srt(session: Session) -> str:
    """SRT: one numbered cue per segment, text prefixed ``SPEAKER_00: ``."""
    lines: list[str] = []
    for n, u in _cues(session):
        lines += [str(n), f"{_clock(u.start, ',')} --> {_clock(u.end, ',')}", f"{u.speaker_name}: {u.text}", ""]
    return "\n".join(lines)
