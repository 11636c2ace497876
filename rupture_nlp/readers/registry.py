"""The input formats: one registry that detection, ``--format`` and folder expansion all read.

Each reader module registers its format when it is imported, and :mod:`rupture_nlp.readers`
imports every module of its package, so a new format is one new module::

    register_format(InputFormat("sbv", read=read_sbv, extensions=(".sbv",), sniff=looks_like_sbv))

Other packages add formats through the ``rupture_nlp_formats`` entry point group (catalogue):
each entry point names an :class:`InputFormat` with the entry point's name, loaded on first use.

Detection (:func:`detect_format`), from the first 64 KiB of a file: the formats whose
``priority`` is above 0, highest first, whose sniffer says the head is unmistakably theirs (a
``WEBVTT`` header, an SRT cue, a JSON object); then the file's extension; then the formats
whose priority is below 0, highest first, whose sniffer takes the head (a CSV-like header
row; plain text takes anything). Formats of equal priority are tried in registration order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import catalogue

from ..errors import RuptureError
from .base import RawTranscript
from .speakers import SpeakerResolver

if TYPE_CHECKING:
    from ..records import Session

#: Sniffer priorities: a match wins over the file extension (the default) ...
UNMISTAKABLE = 10
#: ... counts only when the extension names no format ...
GUESS = -10
#: ... or is what a file is when nothing else is (plain text).
FALLBACK = -100

#: ``read(text, path, resolver, *, strict)``: the decoded file into pieces (RuptureError on bad input).
TranscriptReader = Callable[..., RawTranscript]
#: ``sessions(path)``: the canonical sessions a file holds, streamed.
SessionReader = Callable[[Path], "Iterator[Session]"]
#: ``check_head(head, resolver, path, whole)``: refuse a file from its decoded head (``whole``:
#: the head is the whole file) before the rest of it is read.
HeadCheck = Callable[[str, SpeakerResolver, Path, bool], None]

formats = catalogue.create("rupture_nlp", "formats", entry_points=True)


@dataclass(frozen=True)
class InputFormat:
    """One input format.

    ``read`` turns a transcript (one session) into pieces; a format of whole canonical sessions
    gives ``sessions`` instead. ``sniff(head)`` says whether the head of a file (its first
    64 KiB, decoded, BOM removed) is this format; ``priority`` says how sure that is (see the
    module docstring; ``UNMISTAKABLE``, ``GUESS``, ``FALLBACK``). ``extensions`` (``".sbv"``)
    and ``aliases`` (other names for ``--format``) are matched in any case.
    """

    name: str
    read: TranscriptReader | None = None
    sessions: SessionReader | None = None
    extensions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    sniff: Callable[[str], bool] | None = None
    priority: int = UNMISTAKABLE
    check_head: HeadCheck | None = None

    def __post_init__(self) -> None:
        if (self.read is None) == (self.sessions is None):
            raise ValueError(f"input format {self.name!r}: give either read or sessions")
        if self.priority == 0:
            raise ValueError(f"input format {self.name!r}: priority 0 is the extension's")
        object.__setattr__(self, "name", _key(self.name))
        object.__setattr__(self, "aliases", tuple(_key(a) for a in self.aliases))
        object.__setattr__(self, "extensions", tuple("." + _key(e) for e in self.extensions))


def _key(value: str) -> str:
    return value.strip().lower().lstrip(".")


def register_format(fmt: InputFormat) -> InputFormat:
    """Register ``fmt`` (replacing a format of the same name) and return it."""
    formats.register(fmt.name, func=fmt)
    _index.cache_clear()
    return fmt


def unregister_format(name: str) -> InputFormat:
    """Remove the format registered as ``name`` and return it."""
    # catalogue has no public removal; _remove is its own counterpart of Registry.register
    fmt = catalogue._remove((*formats.namespace, _key(name)))
    _index.cache_clear()
    return fmt


@dataclass(frozen=True)
class _Index:
    all: tuple[InputFormat, ...]
    by_name: dict[str, InputFormat]  # names and aliases
    by_extension: dict[str, InputFormat]
    before_extension: tuple[InputFormat, ...]  # sniffers, in the order they are tried
    after_extension: tuple[InputFormat, ...]


@cache
def _index() -> _Index:
    found = list(formats.get_all().items())
    by_name: dict[str, InputFormat] = {}
    by_extension: dict[str, InputFormat] = {}
    for key, fmt in found:
        if not isinstance(fmt, InputFormat) or fmt.name != key:
            raise ValueError(f"input format registry: {key!r} is not an InputFormat named so")
        for table, keys in ((by_name, (fmt.name, *fmt.aliases)), (by_extension, fmt.extensions)):
            for k in keys:
                other = table.setdefault(k, fmt)
                if other is not fmt:
                    raise ValueError(f"input formats {other.name!r} and {fmt.name!r} both claim {k!r}")
    sniffers = sorted((f for _, f in found if f.sniff is not None), key=lambda f: -f.priority)
    return _Index(
        tuple(f for _, f in found),
        by_name,
        by_extension,
        tuple(f for f in sniffers if f.priority > 0),
        tuple(f for f in sniffers if f.priority < 0),
    )


def all_formats() -> tuple[InputFormat, ...]:
    """Every registered format, in registration order."""
    return _index().all


def format_names() -> list[str]:
    """The names of the registered formats as messages and help texts list them: transcripts
    before formats of whole sessions, each from the least to the most sure of its sniffer
    (plain text first), then by name."""
    return [f.name for f in sorted(_index().all, key=lambda f: (f.read is None, f.priority, f.name))]


def extensions() -> dict[str, str]:
    """File extension (``".vtt"``) -> format name."""
    return {ext: f.name for ext, f in _index().by_extension.items()}


def aliases() -> dict[str, str]:
    """Other names of formats -> format name."""
    return {k: f.name for k, f in _index().by_name.items() if k != f.name}


def get_format(name: str) -> InputFormat:
    """The format registered as ``name`` or with ``name`` as an alias (RuptureError if none)."""
    fmt = _index().by_name.get(_key(name))
    if fmt is None:
        raise RuptureError(f"unknown format {name!r}; choose one of {', '.join(format_names())}")
    return fmt


def check_format(fmt: str | None) -> str | None:
    """The canonical name of format ``fmt`` (a name or alias in any case, a leading dot
    allowed), None for None; RuptureError for a format nobody registered."""
    return None if fmt is None else get_format(fmt).name


def detect_format(path: str | Path, head_text: str) -> str:
    """The format of a file from its first characters and its extension (see the module docstring)."""
    head = head_text.lstrip("\ufeff")
    index = _index()
    for fmt in index.before_extension:
        if fmt.sniff(head):
            return fmt.name
    by_ext = index.by_extension.get(Path(path).suffix.lower())
    if by_ext is not None:
        return by_ext.name
    for fmt in index.after_extension:
        if fmt.sniff(head):
            return fmt.name
    raise RuptureError("unknown format (no reader takes this file); give --format", path)
