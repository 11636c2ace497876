"""The splitting rules of the segmenter, on plain strings (no spaCy objects).

:class:`SplitRules` cuts a turn's text into utterance offsets (the rules are listed in its
docstring); :func:`event_regex` and :func:`event_name` find and name non-verbal events;
:func:`is_backchannel_text` tells a backchannel-only text. The spaCy components that apply
them to Docs are in :mod:`rupture_nlp.segment.components`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from typing import Iterable, Sequence

DEFAULT_BACKCHANNELS = [
    "mm-hmm",
    "mm hmm",
    "mhm",
    "mm",
    "mmm",
    "hmm",
    "hm",
    "uh-huh",
    "uh huh",
    "yeah",
    "yep",
    "yes",
    "right",
    "okay",
    "ok",
    "sure",
    "i see",
    "oh",
    "ah",
    "alright",
]
#: Backchannels that are split off even when only a comma follows ("Mm-hmm, and then?").
DEFAULT_COMMA_BACKCHANNELS = ["mm-hmm", "mm hmm", "mhm", "mm", "mmm", "hmm", "hm", "uh-huh", "uh huh"]
DEFAULT_ABBREVIATIONS = [
    "dr",
    "mr",
    "mrs",
    "ms",
    "mx",
    "prof",
    "rev",
    "st",
    "mt",
    "fr",
    "sr",
    "jr",
    "vs",
    "cf",
    "e.g",
    "i.e",
    "approx",
    "dept",
    "ca",
]
DEFAULT_PAREN_EVENTS = [
    "laughs",
    "laughing",
    "laughter",
    "laugh",
    "chuckles",
    "sighs",
    "sigh",
    "pause",
    "long pause",
    "silence",
    "inaudible",
    "unintelligible",
    "unclear",
    "crosstalk",
    "crying",
    "cries",
    "sobbing",
    "coughs",
    "clears throat",
    "sniffs",
    "whispers",
    "overlapping",
]


def event_regex(pattern: str, paren_events: Iterable[str]) -> re.Pattern:
    """The expression of non-verbal events: text matching ``pattern`` (e.g. anything in square
    brackets) or a word of ``paren_events`` in parentheses, in any case."""
    if not pattern or re.compile(pattern).match(""):
        raise ValueError("rupture_events: pattern must not match the empty string")
    alts = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(paren_events, key=len, reverse=True))
    return re.compile(pattern + (rf"|\((?:{alts})\)" if alts else ""), re.I)


def event_name(matched: str) -> str:
    """The name of an event from its matched text: ``"[Laughs ]"`` -> ``"laughs"``."""
    return " ".join(matched[1:-1].split()).lower() or "event"


def events_between(
    events: list[tuple[int, int, str]], starts: list[int], start: int, end: int
) -> list[tuple[int, int, str]]:
    """The events inside ``[start, end)``, relative to ``start``."""
    i = bisect_left(starts, start)
    out = []
    while i < len(events) and events[i][0] < end:
        s, e, name = events[i]
        if e <= end:
            out.append((s - start, e - start, name))
        i += 1
    return out


_BC_ALT = "|".join(sorted((re.escape(b).replace(r"\ ", r"\s+") for b in DEFAULT_BACKCHANNELS), key=len, reverse=True))
_BACKCHANNEL_ONLY = re.compile(rf"(?:(?:{_BC_ALT})[\s,.!?…-]*)+", re.I)


def is_backchannel_text(text: str) -> bool:
    """Whether ``text`` is only backchannels (of the defaults) and punctuation."""
    return _BACKCHANNEL_ONLY.fullmatch(text) is not None


_TERMINAL = re.compile(r"(?:\.{2,}|…|[.?!]+)[\"'”’»)\]]*(?=\s)")
# end punctuation, the space after it, then what opens the next unit (events, quotes, dashes)
# and its first word
# (The alternatives of a run each begin with a literal character, so that re can scan for
# them quickly: ``\.\.+|…|\.[.?!]*|\?[.?!]*|![.?!]*`` matches what ``\.{2,}|…|[.?!]+`` matches,
# trying the same strings in the same order.)
_TERM_NEXT = re.compile(
    r"(?P<run>(?:\.\.+|…|\.[.?!]*|\?[.?!]*|![.?!]*)[\"'”’»)\]]*)\s+"
    r"(?P<lead>(?:\[[^\[\]\n]{0,80}\]\s*|\([a-z ]{1,30}\)\s*|[\"'“‘«(¿¡—–-]+\s*)*)"
    r"(?P<word>[^\W_][\w'’-]*)?"
)
_WS = re.compile(r"\s*")
# (``--+|—|–(?<=\s–)`` is ``-{2,}|—|(?<=\s)–`` with a literal first, as for _TERM_NEXT.)
_DASH = re.compile(r"(?:--+|—|–(?<=\s–))(?=\s*\S)")
_OPENERS = "\"'“‘«(¿¡"
_FIRST_WORD = re.compile(r"[^\W_][\w'’-]*")
_I_FORM = re.compile(r"I(?:['’](?:m|ve|d|ll))?")
_CLOSERS = "\"'”’»)]"
_WORD = re.compile(r"[^\W_]+")  # a unit without any is "wordless" (only events or punctuation)
_BC_WORDS = re.compile(r"[^\s,.!?]+")
_NO_EVENTS: dict[int, int] = {}


class SplitRules:
    """Splits a turn into utterances with rules for spoken transcripts (:meth:`split`; the
    ``rupture_utterances`` component applies it to every turn of a Doc).

    A turn is cut:

    * after ``.``, ``?``, ``!`` (with closing quotes/brackets) before a word that does not
      start in lower case; not after an abbreviation (``Dr.``) or an initial;
    * after an ellipsis (``...``/``…``) before a capitalised word other than *I*
      (``ellipsis: "capital"``; ``"always"`` or ``"never"`` also work) — a hesitation
      ("It's just... I thought") stays one utterance;
    * after an interruption dash (``--``, ``—``, spaced ``–``) before a capitalised word
      (``dash: "capital"``/``"never"``), keeping the dash with the cut-off part;
    * after a leading backchannel ("Okay. And how...", "Mm-hmm, and then?"): words of
      ``backchannels`` followed by ``.!?``; words of ``comma_backchannels`` also before a comma;
    * where the source started a new line/row/cue for the same speaker, when the text there
      reads as a boundary (``piece_boundaries``): end punctuation, an event or a dash on one
      side, or a capitalised word that is not *I* after text without punctuation.

    Units without words (an event or punctuation alone) are attached to a neighbour
    (``attach_events``): to the one in the same source piece, else to the following one, else
    to the preceding one; a turn that is only an event stays one utterance. Trailing
    fragments are kept as they are.
    """

    def __init__(
        self,
        *,
        backchannels: Sequence[str] = DEFAULT_BACKCHANNELS,
        comma_backchannels: Sequence[str] = DEFAULT_COMMA_BACKCHANNELS,
        abbreviations: Sequence[str] = DEFAULT_ABBREVIATIONS,
        ellipsis: str = "capital",
        dash: str = "capital",
        piece_boundaries: bool = True,
        attach_events: bool = True,
    ):
        if not all(isinstance(x, str) and x.strip() for x in [*backchannels, *comma_backchannels, *abbreviations]):
            raise ValueError(
                "rupture_utterances: backchannels, comma_backchannels and abbreviations must be non-empty strings"
            )
        if ellipsis not in ("capital", "always", "never"):
            raise ValueError(f"rupture_utterances: ellipsis must be capital, always or never, not {ellipsis!r}")
        if dash not in ("capital", "never"):
            raise ValueError(f"rupture_utterances: dash must be capital or never, not {dash!r}")
        bc = sorted(backchannels, key=len, reverse=True)
        alt = "|".join(re.escape(b.lower()).replace(r"\ ", r"\s+") for b in bc)
        unit = rf"(?:{alt})(?![\w'’-])(?:\s*[,.!?]+)?"
        self.bc_run = re.compile(rf"(?:{unit})(?:\s+{unit})*", re.I) if bc else None
        self.bc_first = {c for b in bc for c in (b[:1].lower(), b[:1].upper())}
        # the first two characters a backchannel can start with (in lower case, a space for
        # any whitespace); None when some backchannel makes that test unsound (see
        # _split_backchannels)
        lowered = [b.lower() for b in bc]
        self.bc_pairs = (
            {b[0] + b[1] for b in lowered}
            if all(b.isascii() and len(b) > 1 and (b[1] == " " or not b[1].isspace()) for b in lowered)
            else None
        )
        self.comma_words = {w for b in comma_backchannels for w in b.lower().split()}
        self.abbreviations = {a.lower().rstrip(".") for a in abbreviations}
        self.ellipsis, self.dash = ellipsis, dash
        self.piece_boundaries, self.attach_events = piece_boundaries, attach_events

    def split(
        self, text: str, piece_starts: Sequence[int] = (), events: Sequence[tuple[int, int, str]] = ()
    ) -> list[tuple[int, int]]:
        """Utterance ``(start, end)`` character offsets in ``text`` (a turn), in order.

        ``piece_starts``: offsets where the source's lines/rows/cues begin (0 may be left out);
        ``events``: ``(start, end, name)`` of bracketed events in ``text``.
        """
        n = len(text)
        ev_start = {s: e for s, e, _ in events} if events else _NO_EVENTS
        cuts: list[int] = []

        for m in _TERM_NEXT.finditer(text):
            dot, j = m.start(), m.start(2)  # the run, the lead
            if j >= n or (events and any(s < dot < e for s, e, _ in events)):
                continue
            run, word = m.group(1, 3)
            if word:
                first = word[0]
            else:
                k = m.end(2)
                first = text[k] if k < n else ""
            if "…" in run or ".." in run:
                if self._ellipsis_cuts(first, word or ""):
                    cuts.append(j)
            elif "?" in run or "!" in run:
                if not (first.islower() and run[-1] in _CLOSERS):
                    cuts.append(j)
            elif not first.islower():
                tok = text[text.rfind(" ", 0, dot) + 1 : dot].lstrip(_OPENERS)
                if not (tok.lower() in self.abbreviations or (len(tok) == 1 and tok.isupper())):
                    cuts.append(j)
        if self.dash != "never" and ("-" in text or "—" in text or "–" in text):
            for m in _DASH.finditer(text):
                if (events and any(s < m.start() < e for s, e, _ in events)) or not any(
                    c.isalnum() for c in text[max(0, m.start() - 3) : m.start()]
                ):
                    continue
                j = _WS.match(text, m.end()).end()
                first, word = self._next_word(text, j, ev_start)
                if first.isupper() and not (m.group() == "—" and "—" in text[j : _sentence_end(text, j)]):
                    cuts.append(j)
        if self.piece_boundaries and len(piece_starts) > 1:
            for ps in piece_starts:
                if 0 < ps < n and self._piece_cut(text, ps, ev_start):
                    cuts.append(ps)
        if cuts:
            units = _units(text, sorted(set(cuts)))
        elif n and not text[0].isspace() and not text[-1].isspace():
            units = [(0, n)]  # what _units(text, []) gives for a stripped text
        else:
            units = _units(text, [])
        if self.bc_run is not None:
            for a, b in units:
                if self._may_start_backchannel(text, a, b):
                    units = self._split_backchannels(text, units)
                    break
        if self.attach_events and len(units) > 1:
            for a, _b in units:
                if not text[a].isalnum():  # only such units can be wordless
                    units = self._attach_wordless(text, units, events, piece_starts)
                    break
        return units

    def _next_word(self, text: str, j: int, ev_start: dict[int, int]) -> tuple[str, str]:
        """First character and word after position ``j``, skipping events, quotes, dashes."""
        n = len(text)
        while j < n:
            if j in ev_start:
                j = _WS.match(text, ev_start[j]).end()
            elif text[j] in _OPENERS or text[j] in "-—–":
                j += 1
            else:
                break
        m = _FIRST_WORD.match(text, j)
        if m:
            return m.group()[0], m.group()
        return (text[j] if j < n else ""), ""

    def _ellipsis_cuts(self, first: str, word: str) -> bool:
        if self.ellipsis == "never" or not first:
            return False
        if self.ellipsis == "always":
            return True
        return (first.isupper() or first.isdigit()) and not _I_FORM.fullmatch(word)

    def _piece_cut(self, text: str, ps: int, ev_start: dict[int, int]) -> bool:
        k = ps  # the text before ps ends at k, without trailing whitespace
        while k and text[k - 1].isspace():
            k -= 1
        if not k:
            return False
        last = text[k - 1]
        if last in ",;:":
            return False
        first, word = self._next_word(text, ps, ev_start)
        if text.endswith(("...", "…"), 0, k):
            return not first.islower()
        if (
            last in ".?!"
            or (last in _CLOSERS and _TERMINAL.search(text[max(0, k - 4) : k] + " "))
            or last == "]"
            or text.endswith(("--", "—", "–"), 0, k)
        ):
            return True
        if text.startswith(("--", "—", "["), ps) or ps in ev_start:
            return True
        return first.isupper() and not _I_FORM.fullmatch(word)

    def _may_start_backchannel(self, text: str, a: int, b: int) -> bool:
        """False when ``text[a:b]`` cannot start with a backchannel: its first character is
        none a backchannel starts with or, when both are ASCII, its first two characters are
        none a backchannel starts with (the pattern matches ASCII letters in either case, and
        a space in a backchannel any whitespace)."""
        c0 = text[a]
        if c0 not in self.bc_first:
            return False
        pairs = self.bc_pairs
        if pairs is None:
            return True
        c1 = text[a + 1] if a + 1 < b else ""
        if not c1.isascii():
            return True
        return c0.lower() + (" " if c1.isspace() else c1.lower()) in pairs

    def _split_backchannels(self, text: str, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        may = self._may_start_backchannel
        for a, b in units:
            m = self.bc_run.match(text, a, b) if may(text, a, b) else None
            if m:
                j = _WS.match(text, m.end()).end()
                run = m.group().rstrip()
                pure = all(w in self.comma_words for w in _BC_WORDS.findall(run.lower()))
                if j < b and (run[-1] in ".!?" or pure):
                    out.append((a, len(text[: m.end()].rstrip())))
                    out.append((j, b))
                    continue
            out.append((a, b))
        return out

    def _attach_wordless(
        self,
        text: str,
        units: list[tuple[int, int]],
        events: Sequence[tuple[int, int, str]],
        piece_starts: Sequence[int],
    ) -> list[tuple[int, int]]:
        starts = sorted(set(piece_starts) | {0})

        def piece_of(pos: int) -> int:
            return bisect_left(starts, pos + 1) - 1

        def wordless(a: int, b: int) -> bool:
            chunk = text[a:b]
            for s, e, _ in events:
                if a <= s and e <= b:
                    chunk = chunk.replace(text[s:e], " ")
            return _WORD.search(chunk) is None

        units = list(units)
        i = 0
        while i < len(units) and len(units) > 1:
            a, b = units[i]
            if not wordless(a, b):
                i += 1
                continue
            has_prev, has_next = i > 0, i + 1 < len(units)
            same_prev = has_prev and piece_of(units[i - 1][1] - 1) == piece_of(a)
            same_next = has_next and piece_of(units[i + 1][0]) == piece_of(b - 1)
            if has_next and (same_next or not same_prev):
                units[i : i + 2] = [(a, units[i + 1][1])]
            else:
                units[i - 1 : i + 1] = [(units[i - 1][0], b)]
                i -= 1
        return units


def _sentence_end(text: str, j: int) -> int:
    m = _TERMINAL.search(text, j)
    return m.start() if m else len(text)


def _units(text: str, cuts: list[int]) -> list[tuple[int, int]]:
    """The stretches between cuts, without surrounding whitespace (empty ones dropped)."""
    out = []
    a = 0
    for b in cuts + [len(text)]:
        chunk = text[a:b]
        stripped = chunk.strip()
        if stripped:
            a2 = a + len(chunk) - len(chunk.lstrip())
            out.append((a2, a2 + len(stripped)))
        a = b
    return out
