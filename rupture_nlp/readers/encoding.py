"""Bytes to text: binary-file detection and text-encoding detection.

UTF-8 (with or without BOM) and UTF-16/32 with a BOM are decoded directly; anything else
(Latin-1, Windows-1252, ...) is identified by charset-normalizer. Binary files (PDF, Word,
audio, ...) are refused with a line saying what they look like.

Damage is repaired and recorded in ``meta["repairs"]``, or refused with the line when
``strict``: control characters (NUL, ...) anywhere in the text are removed; a file whose
lines are partly UTF-8 and partly a legacy code page (pasted together from two sources) is
decoded line by line instead of becoming mojibake as a whole.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

import charset_normalizer

from ..errors import RuptureError

#: How much of a file is looked at before deciding anything (format, binary, markers).
HEAD_BYTES = 64 * 1024
#: Largest transcript (not JSONL) read into memory as one session.
MAX_TRANSCRIPT_BYTES = 256 * 1024 * 1024

_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or Word/OpenDocument file"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"),
    (b"{\\rtf", "an RTF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a WAV/RIFF audio or video file"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"SQLite format 3", "an SQLite database"),
)
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\ufffd]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20)])  # _CONTROL's ASCII characters
_STRAY = re.compile("[\x00-\x08\x0e-\x1f]")  # control characters removed from text
#: Line numbers listed in a repair record at most.
MAX_LISTED_LINES = 20
_HINT = "rupture reads plain-text transcripts (.txt, .csv, .tsv, .vtt, .srt) and canonical .jsonl"


def bom_encoding(data: bytes) -> str | None:
    """The codec named by a byte-order mark at the start of ``data``, if any."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return enc
    return None


def check_not_binary(head: bytes, path: str | Path) -> None:
    """Raise RuptureError when the first bytes of a file show it is not text (a known
    signature, or NUL bytes in more than 1% of them: a few are damage that :func:`decode`
    removes)."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise RuptureError(f"binary file (looks like {what}); {_HINT}", path)
    if head[4:8] == b"ftyp":
        raise RuptureError(f"binary file (looks like an MP4/M4A media file); {_HINT}", path)
    if head.count(b"\x00") > max(8, len(head) // 100) and bom_encoding(head) is None:
        raise RuptureError(f"binary file (contains NUL bytes; UTF-16 text needs a byte-order mark); {_HINT}", path)


def decode(data: bytes, path: str | Path, *, strict: bool = False, meta: dict | None = None) -> tuple[str, str]:
    """Decode a whole file: returns ``(text, encoding name)``; the BOM is dropped.

    Raises RuptureError when the bytes are not text in any encoding charset-normalizer knows,
    or when the decoded text is mostly control characters (a binary file without a known
    signature). A few control characters are removed, and lines that are not UTF-8 in an
    otherwise UTF-8 file decoded in the code page they are in; both are recorded in
    ``meta["repairs"]``, or refused (naming the first line) when ``strict``.
    """
    meta = {} if meta is None else meta
    enc = bom_encoding(data)
    if enc is not None:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as e:
            raise RuptureError(
                f"invalid {enc.upper()} text at byte {e.start} (the file starts with a {enc.upper()} byte-order mark)",
                path,
            ) from None
        enc = "utf-8" if enc == "utf-8-sig" else enc
        enc += " (BOM)"
    else:
        try:
            text, enc = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, enc = _decode_mixed(data, path, strict, meta) or _detect(data, path)
    _check_control_chars(text, path)
    return _remove_control_chars(text, path, strict, meta), enc


def _decode_mixed(data: bytes, path: str | Path, strict: bool, meta: dict) -> tuple[str, str] | None:
    """The text of a file that is not UTF-8 as a whole but has lines with non-ASCII UTF-8:
    the lines that are not UTF-8 decoded in their code page (:func:`_legacy_codec`); None when
    no line has non-ASCII UTF-8 (a legacy file)."""
    lines = data.splitlines(keepends=True)
    bad: list[int] = []
    utf8 = 0
    for i, line in enumerate(lines):
        if not line.isascii():
            try:
                line.decode("utf-8")
                utf8 += 1
            except UnicodeDecodeError:
                bad.append(i)
    if not utf8:
        return None
    if strict:
        raise RuptureError(
            f"mixed text encodings: this line is not UTF-8 ({len(bad)} such line(s)) while {utf8} "
            "other line(s) are; save the file as UTF-8",
            path,
            bad[0] + 1,
        )
    enc = _legacy_codec(
        b"".join(lines[i] for i in bad),
        b"".join(line for line in lines if not line.isascii()).decode("utf-8", errors="ignore"),
    )
    for i in bad:
        lines[i] = lines[i].decode(enc, errors="replace").encode("utf-8")
    meta.setdefault("repairs", []).append(
        {"kind": "mixed_encoding", "encoding": enc, "count": len(bad), "lines": [i + 1 for i in bad[:MAX_LISTED_LINES]]}
    )
    return b"".join(lines).decode("utf-8"), f"utf-8 (some lines {enc})"


def _legacy_codec(data: bytes, utf8_text: str) -> str:
    """The code page of the lines of a mixed file that are not UTF-8: of Windows-1252 and the
    candidates of charset-normalizer, the first that gives the most non-ASCII characters that
    are either no letters (quotes, ...) or letters of a script (Latin, Cyrillic, ...) the
    file's UTF-8 lines use. A few short lines leave charset-normalizer unsure (CJK code pages
    read ``Très`` as readily as Windows-1252 does); the UTF-8 lines show what the text is
    written in."""

    def script(c: str) -> str:
        return unicodedata.name(c, "").partition(" ")[0] if c.isalpha() else ""

    scripts = {script(c) for c in utf8_text if not c.isascii()} | {""}
    best, best_share = "latin_1", -1.0
    for enc in dict.fromkeys(["cp1252", *(m.encoding for m in charset_normalizer.from_bytes(data)), "latin_1"]):
        try:
            chars = [c for c in data.decode(enc) if not c.isascii()]
        except (UnicodeDecodeError, LookupError):
            continue
        share = sum(script(c) in scripts for c in chars) / max(1, len(chars))
        if share > best_share:
            best, best_share = enc, share
    return best


def _remove_control_chars(text: str, path: str | Path, strict: bool, meta: dict) -> str:
    """``text`` without the control characters (NUL, ...) a damaged file has here and there."""
    m = _STRAY.search(text)
    if m is None:
        return text
    line = text.count("\n", 0, m.start()) + 1
    if strict:
        raise RuptureError(f"control character U+{ord(m.group()):04X} in the text (a damaged file)", path, line)
    text, n = _STRAY.subn("", text)
    meta.setdefault("repairs", []).append({"kind": "control_chars_removed", "count": n, "line": line})
    return text


def _detect(data: bytes, path: str | Path) -> tuple[str, str]:
    """Legacy 8-bit text via charset-normalizer. On short texts it often finds several code
    pages equally plausible (French in cp1250 as readily as in cp1252); among the candidates
    as clean as the best one, Windows-1252, the usual legacy code page of Western transcripts
    (a superset of Latin-1's letters), is preferred."""
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        raise RuptureError(
            "cannot tell the text encoding (not UTF-8 and no other encoding fits); save the file as UTF-8", path
        )
    tier = [m for m in matches if m.chaos <= best.chaos + 0.01]
    if any(m.encoding in _WESTERN or _WESTERN & set(m.could_be_from_charset) for m in tier):
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:  # one of the five bytes cp1252 leaves undefined
            return data.decode("latin-1"), "latin_1"
    return str(best), best.encoding


_WESTERN = {"cp1252", "latin_1", "iso8859_15"}


def _check_control_chars(text: str, path: str | Path) -> None:
    sample = text[:HEAD_BYTES]
    if not sample:
        return
    if sample.isascii():  # the same count, without a regex step per character
        data = sample.encode("ascii")
        bad = len(data) - len(data.translate(None, _CONTROL_BYTES))
    else:
        bad = len(_CONTROL.findall(sample))
    if bad > max(8, len(sample) // 20):
        raise RuptureError(f"binary file (mostly control characters); {_HINT}", path)


def read_head(path: Path) -> bytes:
    """The first :data:`HEAD_BYTES` of a file (RuptureError when it cannot be read)."""
    try:
        with path.open("rb") as f:
            return f.read(HEAD_BYTES)
    except IsADirectoryError:
        raise RuptureError("is a directory, not a transcript file", path) from None
    except OSError as e:
        raise RuptureError(f"cannot read: {e.strerror}", path) from None


def read_bytes(path: Path) -> bytes:
    """The whole file, refusing files above :data:`MAX_TRANSCRIPT_BYTES`."""
    try:
        size = path.stat().st_size
        if size > MAX_TRANSCRIPT_BYTES:
            raise RuptureError(
                f"file too large for one session ({size / 2**20:.0f} MiB > "
                f"{MAX_TRANSCRIPT_BYTES // 2**20} MiB); split it, or convert it to "
                "canonical JSONL, which is streamed",
                path,
            )
        return path.read_bytes()
    except OSError as e:
        raise RuptureError(f"cannot read: {e.strerror}", path) from None


def decode_head(head: bytes) -> str:
    """Best-effort text of a file's first bytes for sniffing (never raises)."""
    enc = bom_encoding(head)
    if enc:
        return head.decode(enc, errors="replace").lstrip("\ufeff")
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start >= len(head) - 3:  # a character cut by the head's end
            return head[: e.start].decode("utf-8", errors="replace")
        return head.decode("cp1252", errors="replace")
