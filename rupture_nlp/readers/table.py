"""CSV and TSV transcripts: a header row, then one row per line/turn.

Columns are found by name (case, spaces and punctuation ignored): a text column (``text``,
``utterance``, ``transcript``, ``content``, ...), a speaker column (``speaker``, ``name``,
``participant``, ...), optional ``start``/``end`` (seconds, or clock times such as
``00:01:02.5``; a name ending in ``ms`` means milliseconds) and an optional ``role`` column
whose values (therapist/client) give the role when the speaker column holds names. The
delimiter is a tab for .tsv files, else the most frequent of ``, ; \\t |`` in the header.
A row with an empty speaker continues the previous speaker; rows with empty text are skipped.

A quoted field may span lines, but one that holds what look like further rows (a line
starting with a speaker of the file), or that runs to the end of the file, is an unclosed
quote that swallowed the rows after it: refused, naming the line where the quote opens.

Formats ``csv`` and ``tsv``: by extension, or, when the extension names no format, by such a
header row in the first line (tab-separated: ``tsv``).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from ..errors import RuptureError
from .base import Piece, RawTranscript, clean_text, parse_clock, repair_time_slip
from .registry import GUESS, InputFormat, register_format
from .speakers import KNOWN_SPEAKERS, SpeakerResolver, name_key

TEXT_COLUMNS = (
    "text",
    "utterance",
    "utterancetext",
    "transcript",
    "transcription",
    "content",
    "sentence",
    "dialogue",
    "dialog",
    "message",
    "speech",
    "words",
    "turntext",
    "statement",
)
SPEAKER_COLUMNS = (
    "speaker",
    "speakername",
    "speakerlabel",
    "spk",
    "speakerid",
    "name",
    "participant",
    "talker",
    "person",
    "who",
    "interlocutor",
    "role",
    "speakerrole",
)
ROLE_COLUMNS = ("role", "speakerrole", "speakertype")
START_COLUMNS = (
    "start",
    "starttime",
    "startsec",
    "startsecs",
    "startseconds",
    "starts",
    "startms",
    "starttimems",
    "begin",
    "begintime",
    "beginms",
    "from",
    "onset",
    "tstart",
    "time",
    "timestamp",
)
END_COLUMNS = (
    "end",
    "endtime",
    "endsec",
    "endsecs",
    "endseconds",
    "ends",
    "endms",
    "endtimems",
    "stop",
    "stoptime",
    "stopms",
    "to",
    "offset",
    "tend",
)


def _norm(col: str) -> str:
    return re.sub(r"[^a-z0-9]", "", col.lower())


def _find(header: list[str], names: tuple[str, ...], exclude: set[int] = frozenset()) -> int | None:
    normed = [_norm(h) for h in header]
    for n in names:
        for i, h in enumerate(normed):
            if h == n and i not in exclude:
                return i
    return None


def sniff_delimiter(first_line: str, suffix: str = "") -> str:
    """Tab for ``.tsv``/``.tab``, else the commonest of ``, ; \\t |`` in the header line."""
    if suffix.lower() in (".tsv", ".tab"):
        return "\t"
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


# A cell that may be quoted in an error message as a column name: a short name without
# sentence punctuation (anything else may be transcript text: a file without a header row).
_COLUMN_NAME = re.compile(r"[^\W\d][\w ()/#-]{0,30}")
_KNOWN_COLUMNS = {*TEXT_COLUMNS, *SPEAKER_COLUMNS, *ROLE_COLUMNS, *START_COLUMNS, *END_COLUMNS}


def _found_columns(header: list[str]) -> str:
    """The header for an error message: its cells when they look like column names (short
    names, at least one of them known), else only their number, so that the first row of a
    file without a header row, which is transcript text, is never quoted."""
    names = [h.strip() for h in header]
    if any(_norm(n) in _KNOWN_COLUMNS for n in names) and all(
        _COLUMN_NAME.fullmatch(n) and len(n.split()) <= 3 and name_key(n) not in KNOWN_SPEAKERS for n in names if n
    ):
        return "found " + ", ".join(repr(n) for n in names[:12]) + (" ..." if len(names) > 12 else "")
    return f"the first row has {len(names)} field(s) and none looks like a column name: is the header row missing?"


def looks_like_table(head: str) -> bool:
    """Whether the first line of ``head`` is a header with a text and a speaker column."""
    first = head.lstrip("\ufeff").split("\n", 1)[0].strip()
    if not first:
        return False
    header = next(csv.reader([first], delimiter=sniff_delimiter(first)))
    return len(header) >= 2 and _find(header, TEXT_COLUMNS) is not None and _find(header, SPEAKER_COLUMNS) is not None


def table_delimiter(head: str) -> str | None:
    """The delimiter of a file whose first line is a header row with a text and a speaker column
    (the commonest of ``, ; \\t |`` in it), else None."""
    stripped = head.lstrip()
    return sniff_delimiter(stripped.split("\n", 1)[0]) if looks_like_table(stripped) else None


def read_table(text: str, path: str | Path, delimiter: str | None = None, *, strict: bool = False) -> RawTranscript:
    """Parse a CSV/TSV transcript (see the module docstring).

    Raises RuptureError naming the file and line for a missing header, a missing text or
    speaker column, a time that cannot be read, rows out of time order (a slip back of at most
    :data:`~rupture_nlp.readers.base.MAX_TIME_SLIP` seconds is clamped and recorded in
    ``meta["repairs"]`` unless ``strict``) or an unclosed quote.
    """
    path = Path(path)
    body = text.lstrip("\ufeff")
    # skip blank lines before the header, keeping line numbers right
    lead = len(body) - len(body.lstrip("\r\n"))
    first_line_no = body[:lead].count("\n") + 1
    body = body[lead:]
    if not body.strip():
        raise RuptureError("no header row (the file is blank)", path)
    delim = delimiter or sniff_delimiter(body.split("\n", 1)[0], path.suffix)
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delim)
    try:
        header = next(reader)
    except csv.Error as e:
        raise RuptureError(f"malformed CSV header ({e})", path, first_line_no) from None
    text_col = _find(header, TEXT_COLUMNS)
    found = _found_columns(header)
    if text_col is None:
        raise RuptureError(
            f"no text column in the header ({found}); name it 'text' (or utterance, transcript, content)",
            path,
            first_line_no,
        )
    role_col = _find(header, ROLE_COLUMNS, {text_col})
    spk_col = _find(header, SPEAKER_COLUMNS, {text_col} | ({role_col} if role_col is not None else set()))
    if spk_col is None:
        spk_col, role_col = role_col, None
    if spk_col is None:
        raise RuptureError(f"no speaker column in the header ({found}); name it 'speaker'", path, first_line_no)
    start_col = _find(header, START_COLUMNS, {text_col, spk_col})
    end_col = _find(header, END_COLUMNS, {text_col, spk_col})
    scale = {c: (0.001 if _norm(header[c]).endswith("ms") else 1.0) for c in (start_col, end_col) if c is not None}

    def time_of(row: list[str], col: int | None, what: str, line: int) -> float | None:
        if col is None or col >= len(row) or not row[col].strip():
            return None
        try:
            return parse_clock(row[col]) * scale[col]
        except ValueError:
            raise RuptureError(
                f"{what} is not a time in seconds or hh:mm:ss (column {header[col].strip()!r})", path, line
            ) from None

    meta: dict = {"source_format": "tsv" if delim == "\t" else "csv"}
    pieces: list[Piece] = []
    prev_start: float | None = None
    line = first_line_no
    row_end = reader.line_num
    multiline: list[tuple[int, int, list[str]]] = []  # (first line, last line, row) of rows over lines
    try:
        for row in reader:
            row_start, row_end = row_end + 1, reader.line_num
            line = first_line_no + row_end - 1
            if row_end > row_start:
                multiline.append((first_line_no + row_start - 1, line, row))
            if not "".join(row).strip():  # no field with more than whitespace
                continue
            txt = clean_text(row[text_col]) if text_col < len(row) else ""
            if not txt:
                continue
            name = clean_text(row[spk_col]) if spk_col < len(row) else ""
            role = None
            if role_col is not None and role_col < len(row) and row[role_col].strip():
                role = clean_text(row[role_col])
                name = name or role
            start = time_of(row, start_col, "start", line)
            end = time_of(row, end_col, "end", line)
            if start is not None and end is not None and end < start:
                raise RuptureError("row ends before it starts (end < start)", path, line)
            if start is not None:
                if prev_start is not None and start < prev_start:
                    start = repair_time_slip(
                        start,
                        prev_start,
                        meta,
                        strict=strict,
                        path=path,
                        line=line,
                        message="rows are out of time order (start earlier than the row before)",
                    )
                    end = end if end is None else max(end, start)
                prev_start = start
            pieces.append(Piece(name or None, txt, start, end, line, role=role))
    except csv.Error as e:
        raise RuptureError(f"malformed CSV ({e})", path, line) from None
    if not pieces:
        raise RuptureError("no rows with text under the header", path)
    if multiline:
        _check_unclosed_quotes(multiline, pieces, spk_col, delim, body, line, path)
    return RawTranscript(pieces, meta)


def _check_unclosed_quotes(
    multiline: list[tuple[int, int, list[str]]],
    pieces: list[Piece],
    spk_col: int,
    delim: str,
    body: str,
    last_line: int,
    path: Path,
) -> None:
    """RuptureError for a row over several lines whose fields hold a line that starts like a
    row of its own (a speaker of this file, or a built-in one, in the speaker column), or that
    runs to the end of a file with an odd number of quote characters (the reader ended inside
    a quoted field)."""
    speakers = {p.speaker_name for p in pieces} | {p.role for p in pieces}
    for first, last, row in multiline:
        rows_inside = 0
        for field in row:
            for inner in field.splitlines()[1:]:
                try:
                    cells = next(csv.reader([inner], delimiter=delim), [])
                except csv.Error:
                    continue
                if len(cells) > max(spk_col, 1):
                    who = clean_text(cells[spk_col].strip('"'))
                    rows_inside += who in speakers or name_key(who) in KNOWN_SPEAKERS
        if rows_inside:
            raise RuptureError(
                f"unclosed quote: the quoted field that starts on this line runs on to line {last} "
                f"and holds {rows_inside} line(s) that look like rows; close the quote (a quote "
                "inside a quoted field is written twice)",
                path,
                first,
            )
    first, last, _row = multiline[-1]
    if last == last_line and body.count('"') % 2:
        raise RuptureError(
            f"unclosed quote: the quoted field that starts on this line runs on to the end of the file "
            f"(line {last}); close the quote (a quote inside a quoted field is written twice)",
            path,
            first,
        )


def read_csv(text: str, path: str | Path, _resolver: SpeakerResolver, *, strict: bool = False) -> RawTranscript:
    """:func:`read_table` with the delimiter of the file (a tab for ``.tsv``/``.tab``)."""
    return read_table(text, path, strict=strict)


def read_tsv(text: str, path: str | Path, _resolver: SpeakerResolver, *, strict: bool = False) -> RawTranscript:
    """:func:`read_table` with tabs between the fields."""
    return read_table(text, path, delimiter="\t", strict=strict)


CSV = register_format(
    InputFormat(
        "csv",
        read=read_csv,
        extensions=(".csv",),
        priority=GUESS,
        sniff=lambda head: table_delimiter(head) not in (None, "\t"),
    )
)
TSV = register_format(
    InputFormat(
        "tsv",
        read=read_tsv,
        extensions=(".tsv", ".tab"),
        priority=GUESS,
        sniff=lambda head: table_delimiter(head) == "\t",
    )
)
