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
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import RuptureError

SPEAKERS = ("therapist", "client", "any")
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
        def bad(msg: str) -> RuptureError:
            return RuptureError(f"invalid label schema: {msg}", source)

        if not isinstance(d, dict):
            raise bad("the file must hold a mapping with 'name' and 'labels'")
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad("'name' is missing or empty")
        raw_labels = d.get("labels")
        if not isinstance(raw_labels, list) or not raw_labels:
            raise bad("'labels' must be a non-empty list")
        labels: list[Label] = []
        seen: set[str] = set()
        for i, rl in enumerate(raw_labels):
            if not isinstance(rl, dict):
                raise bad(f"label {i + 1} is not a mapping")
            missing = [k for k in ("id", "category", "speaker", "description") if not rl.get(k)]
            if missing:
                raise bad(f"label {i + 1} ({rl.get('id', '?')}) lacks {', '.join(missing)}")
            lid = str(rl["id"])
            if lid in seen:
                raise bad(f"label id '{lid}' occurs twice")
            if rl["speaker"] not in SPEAKERS:
                raise bad(f"label '{lid}': speaker must be one of {', '.join(SPEAKERS)}, not '{rl['speaker']}'")
            seen.add(lid)
            labels.append(Label(id=lid, category=str(rl["category"]), speaker=rl["speaker"],
                                description=str(rl["description"]).strip(),
                                hotkey=str(rl["hotkey"]) if rl.get("hotkey") else None))
        raw_cats = d.get("categories")
        if raw_cats is None:
            order = list(dict.fromkeys(l.category for l in labels))
            categories = [Category(id=c) for c in order]
        else:
            if not isinstance(raw_cats, list):
                raise bad("'categories' must be a list")
            categories = []
            for i, rc in enumerate(raw_cats):
                if not isinstance(rc, dict) or not rc.get("id"):
                    raise bad(f"category {i + 1} needs an 'id'")
                ex = rc.get("exclusive", False)
                if not isinstance(ex, bool):
                    raise bad(f"category '{rc['id']}': 'exclusive' must be true or false")
                categories.append(Category(id=str(rc["id"]), exclusive=ex,
                                           description=str(rc.get("description", "")).strip()))
            ids = [c.id for c in categories]
            if len(set(ids)) != len(ids):
                raise bad("a category id occurs twice")
            undeclared = sorted({l.category for l in labels} - set(ids))
            if undeclared:
                raise bad(f"labels use categories not listed under 'categories': {', '.join(undeclared)}")
        return cls(name=name.strip(), labels=labels, categories=categories,
                   description=str(d.get("description", "")).strip(),
                   version=str(d["version"]) if d.get("version") is not None else None, source=source)


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
