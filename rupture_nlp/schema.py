"""Label schemas: which labels exist, their coarse category, speaker and definition.

A schema is a YAML or JSON file::

    name: 3rs
    categories:                      # optional; default: one non-exclusive category per name used
      - {id: withdrawal, exclusive: false, description: ...}
    labels:
      - {id: withdrawal/denial, category: withdrawal, speaker: client, description: ...}

In an *exclusive* category an utterance carries at most one of its labels (as in MI coding);
in a non-exclusive one any number (as in 3RS). The default schema is the 3RS
(``data/schema_3rs.yaml``).

The file's shape is the JSON Schema ``data/label-schema.schema.json`` (checked by
:meth:`LabelSchema.from_dict`); what it cannot say — unique label and category ids, every
label's category declared — :class:`LabelSchema` checks when it is constructed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import jsonschema
import yaml

from .errors import RuptureError

DATA_DIR = Path(__file__).resolve().parent / "data"


def default_schema_path() -> Path:
    return DATA_DIR / "schema_3rs.yaml"


@dataclass(frozen=True)
class Label:
    id: str
    category: str
    speaker: str
    description: str
    hotkey: str | None = None


@dataclass(frozen=True)
class Category:
    id: str
    exclusive: bool = False
    description: str = ""


@dataclass
class LabelSchema:
    """An ordered set of labels grouped into coarse categories.

    ``label_ids`` fixes the column order of every score matrix (shape: n_utterances x n_labels).
    """

    name: str
    labels: list[Label]
    categories: list[Category]
    description: str = ""
    version: str | None = None
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """The checks a JSON Schema cannot express: unique ids, every label's category declared."""
        for kind, ids in (("label", self.label_ids), ("category", self.category_ids)):
            seen: set[str] = set()
            for i in ids:
                if i in seen:
                    raise RuptureError(f"invalid label schema: {kind} id '{i}' occurs twice", self.source)
                seen.add(i)
        undeclared = sorted({l.category for l in self.labels} - set(self.category_ids))
        if undeclared:
            raise RuptureError(
                "invalid label schema: labels use categories not listed under 'categories': " + ", ".join(undeclared),
                self.source,
            )

    # -- lookups -----------------------------------------------------------------------
    @property
    def label_ids(self) -> list[str]:
        return [l.id for l in self.labels]

    @property
    def category_ids(self) -> list[str]:
        return [c.id for c in self.categories]

    def label(self, label_id: str) -> Label:
        for l in self.labels:
            if l.id == label_id:
                return l
        raise KeyError(label_id)

    def category(self, category_id: str) -> Category:
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(category_id)

    def category_of(self, label_id: str) -> str:
        return self.label(label_id).category

    def labels_in(self, category_id: str) -> list[str]:
        return [l.id for l in self.labels if l.category == category_id]

    def coarse(self, labels: Iterable[str]) -> list[str]:
        """The categories (coarse level) of a set of fine labels, in schema order."""
        cats = {self.category_of(l) for l in labels}
        return [c for c in self.category_ids if c in cats]

    def unknown(self, labels: Iterable[str]) -> list[str]:
        known = set(self.label_ids)
        return [l for l in labels if l not in known]

    # -- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if self.version:
            d["version"] = self.version
        if self.description:
            d["description"] = self.description
        d["categories"] = [asdict(c) for c in self.categories]
        d["labels"] = [{k: v for k, v in asdict(l).items() if v is not None} for l in self.labels]
        return d

    def save(self, path: str | Path) -> None:
        from .atomic import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @classmethod
    def from_dict(cls, d: Any, source: str | None = None) -> "LabelSchema":
        """A schema from a parsed file; RuptureError (one line naming ``source`` and the field)
        when ``d`` breaks ``data/label-schema.schema.json`` or the checks of the constructor."""
        errors = list(_validator().iter_errors(d))
        if errors:
            raise RuptureError(f"invalid label schema: {_describe(errors, d)}", source)
        labels = [_build(Label, rl) for rl in d["labels"]]
        if d.get("categories") is None:
            categories = [Category(id=c) for c in dict.fromkeys(l.category for l in labels)]
        else:
            categories = [_build(Category, rc) for rc in d["categories"]]
        return cls(
            name=d["name"].strip(),
            labels=labels,
            categories=categories,
            description=str(d.get("description") or "").strip(),
            version=str(d["version"]) if d.get("version") is not None else None,
            source=source,
        )


# --------------------------------------------------------------------------- file format
@lru_cache(maxsize=1)
def label_schema_json_schema() -> dict[str, Any]:
    """The JSON Schema of a label-schema file (``data/label-schema.schema.json``)."""
    return json.loads((DATA_DIR / "label-schema.schema.json").read_text("utf-8"))


#: The speakers a label may belong to (``speaker`` in a schema file).
SPEAKERS: tuple[str, ...] = tuple(
    label_schema_json_schema()["properties"]["labels"]["items"]["properties"]["speaker"]["enum"]
)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(label_schema_json_schema())


def _build(cls: type, raw: dict[str, Any]) -> Any:
    """A :class:`Label` or :class:`Category` from its (validated) mapping: values as text
    (booleans kept), descriptions stripped, unknown keys ignored; a value that is null or blank
    leaves the field at its default."""
    kw: dict[str, Any] = {}
    for f in fields(cls):
        v = raw.get(f.name)
        if v is None or isinstance(v, bool):
            if v is not None:
                kw[f.name] = v
            continue
        v = str(v).strip() if f.name == "description" else str(v)
        if v.strip():
            kw[f.name] = v
    return cls(**kw)


_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "null": "empty",
}


def _where(path: Sequence[Any], d: Any) -> tuple[str, str | None]:
    """``(owner, field)`` of a place in a schema file: ``("label 2 ('x/y')", "speaker")``,
    ``("", "name")`` for a top-level key, ``("the file", None)`` for the whole file."""
    if not path:
        return "the file", None
    if len(path) == 1:
        return "", str(path[0])
    kind = {"labels": "label", "categories": "category"}.get(str(path[0]), str(path[0]))
    item = d[path[0]][path[1]]
    ident = item.get("id") if isinstance(item, dict) else None
    owner = f"{kind} {path[1] + 1}" if isinstance(path[1], int) else f"{kind} '{path[1]}'"
    if isinstance(ident, (str, int)) and not isinstance(ident, bool) and str(ident).strip():
        owner += f" ('{ident}')"
    return owner, "/".join(map(str, path[2:])) or None


def _value(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return _TYPE_WORDS["object" if isinstance(v, dict) else "array"]
    return repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."


def _position(err: jsonschema.ValidationError, d: Any) -> list[int]:
    """Where an error sits in the file (document order): key order in mappings, index in lists."""
    key, node = [], d
    for p in err.absolute_path:
        key.append(list(node).index(p) if isinstance(node, dict) else p)
        node = node[p]
    return key


def _describe(errors: list[jsonschema.ValidationError], d: Any) -> str:
    """The first error in the file, as a short phrase naming the field."""
    rank = {"type": 0, "required": 1}
    err = min(errors, key=lambda e: (_position(e, d), rank.get(e.validator, 2)))
    owner, fld = _where(list(err.absolute_path), d)
    where = f"{owner}: '{fld}'" if owner and fld else (f"'{fld}'" if fld else owner)
    if err.validator == "type":
        if not err.absolute_path:
            return "the file must hold a mapping with 'name' and 'labels'"
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        return f"{where} must be {' or '.join(_TYPE_WORDS.get(t, t) for t in want)}, not {_value(err.instance)}"
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        if not err.absolute_path:
            return " and ".join(f"'{k}'" for k in missing) + (" is" if len(missing) == 1 else " are") + " missing"
        return f"{owner} lacks {', '.join(missing)}"
    if err.validator in ("pattern", "minLength"):
        return f"{where} is empty"
    if err.validator == "minItems":
        return f"{where} must be a non-empty list"
    if err.validator == "enum":
        # "speaker must be one of ...": the field named as the subject of the sentence
        return (
            f"{owner + ': ' if owner else ''}{fld} must be one of {', '.join(map(str, err.validator_value))}, "
            f"not {_value(err.instance)}"
        )
    return f"{where}: {err.message[:120]}"


def load_schema(path: str | Path | None = None) -> LabelSchema:
    """Load and validate a schema file (YAML or JSON); None loads the default 3RS schema."""
    p = Path(path) if path is not None else default_schema_path()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise RuptureError(f"cannot read label schema: {e.strerror}", p) from None
    except UnicodeDecodeError:
        raise RuptureError("label schema is not UTF-8 text", p) from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        line = getattr(e, "lineno", None)
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            line = mark.line + 1
        raise RuptureError("label schema is not valid YAML/JSON", p, line) from None
    return LabelSchema.from_dict(data, source=str(p))
