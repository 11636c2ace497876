#!/usr/bin/env python3
"""Build the bundled corpus from its authoring files.

The sessions in ``corpora/src/<batch>/<session>.txt`` are written by hand, one utterance
per line, in this format::

    # session_id: b1-cbt-anxiety-01        (header lines: "# key: value", kept as meta)
    # modality: CBT
    T: So how did the breathing practice go?
    C: {+4.5} Fine. || withdrawal/minimal_response
    C: [sighs] I mean, it was whatever.

* ``T:`` is the therapist, ``C:`` the client; consecutive lines of one speaker form a turn.
* ``{+N}`` right after the prefix: N seconds of silence before the utterance.
* `` || a, b`` at the end: the gold labels of the utterance (schema ids).

``python scripts/build_corpus.py --check corpora/src/b1`` prints statistics of one batch
(counts per label, labelled share, repeated texts) without writing anything.
``python scripts/build_corpus.py`` builds ``corpora/{train,dev,test}.jsonl`` (canonical
session format with gold labels and synthetic times), ``corpora/splits.json`` and the raw
example renderings in ``corpora/examples/``. Only the standard library is used, so writers
can run it anywhere; the output is deterministic.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "corpora" / "src"
SCHEMA = ROOT / "rupture_nlp" / "data" / "schema_3rs.yaml"
LINE = re.compile(r"^(?P<spk>[TC]):\s*(?:\{\+(?P<pause>\d+(?:\.\d+)?)\}\s*)?(?P<text>.*?)\s*(?:\|\|\s*(?P<labels>.*))?$")


def schema_label_ids() -> list[str]:
    ids = re.findall(r"^\s*-\s*id:\s*(\S+/\S+)\s*$", SCHEMA.read_text(encoding="utf-8"), flags=re.M)
    return ids


def parse_file(path: Path, valid: set[str]) -> tuple[dict, list[dict], list[str]]:
    """Return (meta, utterance dicts, problems) for one authoring file."""
    meta: dict = {}
    utts: list[dict] = []
    problems: list[str] = []
    for no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if ":" in line:
                k, v = line[1:].split(":", 1)
                meta[k.strip()] = v.strip()
            continue
        m = LINE.match(line)
        if not m or not m.group("text"):
            problems.append(f"{path}:{no}: not a 'T:' or 'C:' utterance line")
            continue
        labels = [x.strip() for x in (m.group("labels") or "").split(",") if x.strip()]
        bad = [x for x in labels if x not in valid]
        if bad:
            problems.append(f"{path}:{no}: unknown label(s) {bad}")
            labels = [x for x in labels if x in valid]
        utts.append({
            "speaker": "therapist" if m.group("spk") == "T" else "client",
            "text": m.group("text"),
            "pause": float(m.group("pause")) if m.group("pause") else None,
            "labels": labels,
            "line": no,
        })
    if "session_id" not in meta:
        problems.append(f"{path}: missing '# session_id:' header")
        meta["session_id"] = path.stem
    return meta, utts, problems


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def add_times(session_id: str, utts: list[dict]) -> None:
    """Give every utterance plausible start/end times (seconds), deterministic per session."""
    rng = random.Random(int(hashlib.sha256(session_id.encode()).hexdigest()[:8], 16))
    t = round(rng.uniform(2.0, 20.0), 2)
    prev = None
    for u in utts:
        n = max(1, len(words(u["text"])))
        if u["pause"] is not None:
            gap = u["pause"]
        elif prev is None:
            gap = 0.0
        elif prev == u["speaker"]:
            gap = rng.uniform(0.15, 0.6)
        else:
            gap = rng.uniform(0.3, 1.4)
        start = t + gap
        dur = n / rng.uniform(2.2, 3.1) + 0.25
        u["start"], u["end"] = round(start, 2), round(start + dur, 2)
        t = start + dur
        prev = u["speaker"]


def to_canonical(meta: dict, utts: list[dict]) -> dict:
    sid = meta["session_id"]
    add_times(sid, utts)
    out, turn, prev = [], -1, None
    for i, u in enumerate(utts, 1):
        if u["speaker"] != prev:
            turn += 1
            prev = u["speaker"]
        out.append({
            "id": f"{sid}-u{i:04d}", "turn": turn, "speaker": u["speaker"],
            "speaker_name": "T" if u["speaker"] == "therapist" else "C",
            "text": u["text"], "start": u["start"], "end": u["end"], "labels": u["labels"],
        })
    m = {k: v for k, v in meta.items() if k != "session_id"}
    return {"session_id": sid, "meta": m, "utterances": out}


def load_sessions(dirs: list[Path], valid: set[str]) -> tuple[list[tuple[dict, list[dict]]], list[str]]:
    sessions, problems = [], []
    for d in dirs:
        for p in sorted(d.rglob("*.txt")):
            meta, utts, probs = parse_file(p, valid)
            meta.setdefault("source_file", str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p))
            problems += probs
            sessions.append((meta, utts))
    return sessions, problems


def stats(sessions, label_ids) -> str:
    n_utt = sum(len(u) for _, u in sessions)
    counts = collections.Counter(l for _, us in sessions for u in us for l in u["labels"])
    labelled = sum(1 for _, us in sessions for u in us if u["labels"])
    no_rupture = sum(1 for _, us in sessions
                     if not any(l.split("/")[0] in ("withdrawal", "confrontation") for u in us for l in u["labels"]))
    lens = [len(u) for _, u in sessions]
    lines = [f"sessions: {len(sessions)}  utterances: {n_utt}  labelled: {labelled} ({100*labelled/max(1,n_utt):.1f}%)"
             f"  sessions without rupture: {no_rupture} ({100*no_rupture/max(1,len(sessions)):.0f}%)",
             f"utterances per session: min {min(lens, default=0)} max {max(lens, default=0)}"]
    for lab in label_ids:
        lines.append(f"  {counts.get(lab, 0):5d}  {lab}")
    text_count = collections.Counter(" ".join(words(u["text"])) for _, us in sessions for u in us
                                     if len(words(u["text"])) > 6)
    reps = [(c, t) for t, c in text_count.items() if c > 2]
    if reps:
        lines.append("texts of more than six words used more than twice (must be fixed):")
        lines += [f"  {c}x  {t}" for c, t in sorted(reps, reverse=True)]
    bad_len = [m["session_id"] for m, u in sessions if not 50 <= len(u) <= 110]
    if bad_len:
        lines.append(f"sessions outside 50-110 utterances: {bad_len}")
    return "\n".join(lines)


def stratified_split(sessions: list[dict], label_ids: list[str], seed: int = 13, trials: int = 3000) -> dict[str, str]:
    """Assign whole sessions to train/dev/test (70/15/15 of sessions), stratified by label.

    Among ``trials`` seeded random partitions, keep the one whose dev and test parts hold every
    label at least ``min(5, ...)`` times and whose per-label shares are closest (squared error)
    to 15% each. Deterministic for a given seed and input.
    """
    rng = random.Random(seed)
    counts = [collections.Counter(l for u in s["utterances"] for l in u["labels"]) for s in sessions]
    total = collections.Counter()
    for c in counts:
        total.update(c)
    n = len(sessions)
    n_dev = n_test = round(0.15 * n)
    best, best_score = None, None
    order = list(range(n))
    for _ in range(trials):
        rng.shuffle(order)
        dev, test = order[:n_dev], order[n_dev:n_dev + n_test]
        score, ok = 0.0, True
        for part in (dev, test):
            c = collections.Counter()
            for i in part:
                c.update(counts[i])
            for l in label_ids:
                if c[l] < min(5, total[l] * 0.1):
                    ok = False
                score += (c[l] / max(1, total[l]) - 0.15) ** 2
        if ok and (best_score is None or score < best_score):
            best, best_score = (list(dev), list(test)), score
    if best is None:
        raise SystemExit("no split found that puts every label in dev and test; add labelled sessions")
    assign = {s["session_id"]: "train" for s in sessions}
    for i in best[0]:
        assign[sessions[i]["session_id"]] = "dev"
    for i in best[1]:
        assign[sessions[i]["session_id"]] = "test"
    return assign


def fmt_clock(t: float, sep: str = ".") -> str:
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{int(s):02d}{sep}{int(round((s - int(s)) * 1000)) % 1000:03d}"


def write_examples(sessions: list[dict], outdir: Path) -> None:
    """Raw, unlabelled renderings of a few test-split sessions in every supported input format."""
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.iterdir():
        old.unlink()
    names = {"therapist": "Therapist", "client": "Client"}

    def turns(s):
        cur = None
        for u in s["utterances"]:
            if cur and cur["turn"] == u["turn"]:
                cur["text"] += " " + u["text"]
                cur["end"] = u["end"]
            else:
                if cur:
                    yield cur
                cur = dict(turn=u["turn"], speaker=u["speaker"], text=u["text"], start=u["start"], end=u["end"])
        if cur:
            yield cur

    picks = sessions[:5]
    renderers = {
        "txt": lambda s: "".join(f"{'T' if t['speaker']=='therapist' else 'C'}: {t['text']}\n" for t in turns(s)),
        "timestamped.txt": lambda s: "".join(
            f"[{fmt_clock(t['start'])[:8]}] {names[t['speaker']]}: {t['text']}\n" for t in turns(s)),
        "csv": lambda s: "speaker,start,end,text\n" + "".join(
            f"{names[t['speaker']]},{t['start']:.2f},{t['end']:.2f},\"{t['text'].replace(chr(34), chr(34)*2)}\"\n" for t in turns(s)),
        "vtt": lambda s: "WEBVTT\n\n" + "".join(
            f"{fmt_clock(u['start'])} --> {fmt_clock(u['end'])}\n<v {names[u['speaker']]}>{u['text']}\n\n" for u in s["utterances"]),
        "srt": lambda s: "".join(
            f"{i}\n{fmt_clock(u['start'], ',')} --> {fmt_clock(u['end'], ',')}\n{names[u['speaker']]}: {u['text']}\n\n"
            for i, u in enumerate(s["utterances"], 1)),
    }
    for s, (ext, render) in zip(picks, renderers.items()):
        (outdir / f"{s['session_id']}.{ext}").write_text(render(s), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", nargs="*", metavar="DIR", help="print statistics of these batch folders only")
    ap.add_argument("--out", type=Path, default=ROOT / "corpora", help="output folder (default: corpora/)")
    args = ap.parse_args()
    label_ids = schema_label_ids()
    valid = set(label_ids)
    dirs = [Path(d) for d in args.check] if args.check else [SRC]
    sessions, problems = load_sessions(dirs, valid)
    ids = collections.Counter(m["session_id"] for m, _ in sessions)
    problems += [f"duplicate session_id {k}" for k, c in ids.items() if c > 1]
    print(stats(sessions, label_ids))
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    if args.check is not None:
        return 1 if problems else 0
    if problems:
        return 1
    canon = [to_canonical(m, u) for m, u in sessions]
    assign = stratified_split(canon, label_ids)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for part in ("train", "dev", "test"):
        rows = [s for s in canon if assign[s["session_id"]] == part]
        for s in rows:
            s["meta"]["split"] = part
        tmp = out / f".{part}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            for s in rows:
                f.write(json.dumps(s, ensure_ascii=False) + "\n")
        os.replace(tmp, out / f"{part}.jsonl")
        c = collections.Counter(l for s in rows for u in s["utterances"] for l in u["labels"])
        missing = [l for l in label_ids if not c[l]]
        print(f"{part}: {len(rows)} sessions, {sum(len(s['utterances']) for s in rows)} utterances"
              + (f"; MISSING labels {missing}" if missing else ""))
    (out / "splits.json").write_text(json.dumps(dict(sorted(assign.items())), indent=1) + "\n", encoding="utf-8")
    write_examples([s for s in canon if assign[s["session_id"]] == "test"], out / "examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
