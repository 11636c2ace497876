"""Bytes to text: binary-file detection and text-encoding detection.

UTF-8 (with or without BOM) and UTF-16/32 with a BOM are decoded directly; anything else
(Latin-1, Windows-1252, ...) is identified by charset-normalizer. Binary files (PDF, Word,
audio, ...) are refused with a line saying what they look like.
"""
from __future__ import annotations

import codecs
import re
from pathlib import Path

import charset_normalizer

from ..errors import RuptureError

#: How much of a file is looked at before deciding anything (format, binary, markers).
HEAD_BYTES = 64 * 1024
#: Largest transcript (not JSONL) read into memory as one session.
MAX_TRANSCRIPT_BYTES = 256 * 1024 * 1024

_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_MAGIC = (
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive or Word/OpenDocument file"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"), (b"{\\rtf", "an RTF document"),
    (b"\x1f\x8b", "a gzip archive"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"RIFF", "a WAV/RIFF audio or video file"), (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio file"), (b"fLaC", "a FLAC audio file"), (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"SQLite format 3", "an SQLite database"),
)
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\ufffd]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0e, 0x20)])  # _CONTROL's ASCII characters
_HINT = "rupture reads plain-text transcripts (.txt, .csv, .tsv, .vtt, .srt) and canonical .jsonl"


def bom_encoding(data: bytes) -> str | None:
    """The codec named by a byte-order mark at the start of ``data``, if any."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return enc
    return None


def check_not_binary(head: bytes, path: str | Path) -> None:
    """Raise RuptureError when the first bytes of a file show it is not text."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise RuptureError(f"binary file (looks like {what}); {_HINT}", path)
    if head[4:8] == b"ftyp":
        raise RuptureError(f"binary file (looks like an MP4/M4A media file); {_HINT}", path)
    if b"\x00" in head and bom_encoding(head) is None:
        raise RuptureError(f"binary file (contains NUL bytes; UTF-16 text needs a byte-order mark); {_HINT}", path)


def decode(data: bytes, path: str | Path) -> tuple[str, str]:
    """Decode a whole file: returns ``(text, encoding name)``; the BOM is dropped.

    Raises RuptureError when the bytes are not text in any encoding charset-normalizer knows,
    or when the decoded text is mostly control characters (a binary file without a known
    signature).
    """
    enc = bom_encoding(data)
    if enc is not None:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as e:
            raise RuptureError(f"invalid {enc.upper()} text at byte {e.start} (the file starts with a "
                               f"{enc.upper()} byte-order mark)", path) from None
        enc = "utf-8" if enc == "utf-8-sig" else enc
        enc += " (BOM)"
    else:
        try:
            text, enc = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, enc = _detect(data, path)
    _check_control_chars(text, path)
    return text, enc


def _detect(data: bytes, path: str | Path) -> tuple[str, str]:
    """Legacy 8-bit text via charset-normalizer. On short texts it often finds several code
    pages equally plausible (French in cp1250 as readily as in cp1252); among the candidates
    as clean as the best one, Windows-1252, the usual legacy code page of Western transcripts
    (a superset of Latin-1's letters), is preferred."""
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        raise RuptureError("cannot tell the text encoding (not UTF-8 and no other encoding fits); "
                           "save the file as UTF-8", path)
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
            raise RuptureError(f"file too large for one session ({size / 2**20:.0f} MiB > "
                               f"{MAX_TRANSCRIPT_BYTES // 2**20} MiB); split it, or convert it to "
                               "canonical JSONL, which is streamed", path)
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
            return head[:e.start].decode("utf-8", errors="replace")
        return head.decode("cp1252", errors="replace")
