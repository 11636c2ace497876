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
* `` || a, b`` at the end: the gold labels of the utterance (schema ids). Tags written
  ``hn:<class>`` there are not labels: they mark a deliberate hard negative (an unlabelled
  utterance of a kind a model tends to mistake for a marker, e.g. ``hn:sustain_talk``) so the
  datasheet can count them; ``HARD_NEGATIVES`` lists the classes.

``python scripts/build_corpus.py --check corpora/src/b1`` prints statistics of one batch
(counts per label, labelled share, minutes per session, repeated texts) without writing
anything; it needs only the standard library, so writers can run it anywhere.

``python scripts/build_corpus.py`` (in the project venv) builds, deterministically:

* ``corpora/{train,dev,test}.jsonl``: the sessions the trainer reads — **segmenter-aligned**:
  each authored session is rendered as WebVTT, segmented by the project's own pipeline (exactly
  what ``rupture tag`` does with that file) and its gold labels projected onto the units by the
  rule of :mod:`rupture_nlp.corpus.align` (``source_ids`` on every unit name its authored lines);
* ``corpora/splits.json`` (session id -> part) and the raw example renderings in
  ``corpora/examples/``;
* ``corpora/asr/{train,dev,test}.jsonl``: every session rendered as speech recognition plus
  diarization would deliver it (:mod:`rupture_nlp.corpus.asr`, default knobs, seed
  ``ASR_SEED``), then segmenter-aligned like the clean files — the test rendering is the ASR test
  set, never trained on unless a trainer chooses ``asr/train.jsonl`` as augmentation;
* ``corpora/agreement/coder1.jsonl`` and ``coder2.jsonl``: the double-coded sessions as authored
  (one utterance per line) with the first coding (``src/``) and the independent second coding
  (``agreement/coder2/``), for ``rupture corpus agreement``.

Batch folders: ``b*`` are the first corpus's 6–12-minute stretches, ``w*`` whole sessions of
40–55 minutes, ``h*`` health-behaviour counselling consultations of 10–30 minutes; the kind is
recorded as ``meta["collection"]``.
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
CODER2 = ROOT / "corpora" / "agreement" / "coder2"
ASR_SEED = 2026
#: batch folder prefix -> (collection, allowed utterances, allowed minutes)
COLLECTIONS = {
    "b": ("stretch", (50, 110), (4, 14)),
    "w": ("whole_session", (250, 600), (40, 55)),
    "h": ("health_counselling", (60, 320), (10, 30)),
}
SCHEMA = ROOT / "rupture_nlp" / "data" / "schema_3rs.yaml"
HARD_NEGATIVES = {
    # therapist talk that is not a repair strategy
    "reflection",
    "open_question",
    "information",
    "agenda",
    "empathy",
    # client talk that is not a rupture marker
    "sustain_talk",
    "ambivalence",
    "problem_talk",
    "tiredness",
    "third_party_complaint",
    "brief_answer",
    "collaborative_disagreement",
    "honest_agreement",
}
LINE = re.compile(
    r"^(?P<spk>[TC]):\s*(?:\{\+(?P<pause>\d+(?:\.\d+)?)\}\s*)?(?P<text>.*?)\s*(?:\|\|\s*(?P<labels>.*))?$"
)


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
        tags = [x.strip() for x in (m.group("labels") or "").split(",") if x.strip()]
        hard = [x[3:] for x in tags if x.startswith("hn:")]
        labels = [x for x in tags if not x.startswith("hn:")]
        if hard and labels:
            problems.append(f"{path}:{no}: a labelled utterance cannot also be a hard negative")
        unknown_hn = [x for x in hard if x not in HARD_NEGATIVES]
        if unknown_hn:
            problems.append(f"{path}:{no}: unknown hard-negative class(es) {unknown_hn}")
        bad = [x for x in labels if x not in valid]
        if bad:
            problems.append(f"{path}:{no}: unknown label(s) {bad}")
            labels = [x for x in labels if x in valid]
        utts.append(
            {
                "speaker": "therapist" if m.group("spk") == "T" else "client",
                "text": m.group("text"),
                "pause": float(m.group("pause")) if m.group("pause") else None,
                "labels": labels,
                "hard_negative": hard,
                "line": no,
            }
        )
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
        out.append(
            {
                "id": f"{sid}-u{i:04d}",
                "turn": turn,
                "speaker": u["speaker"],
                "speaker_name": "T" if u["speaker"] == "therapist" else "C",
                "text": u["text"],
                "start": u["start"],
                "end": u["end"],
                "labels": u["labels"],
            }
        )
        if u.get("hard_negative"):
            out[-1]["hard_negative"] = u["hard_negative"]
    m = {k: v for k, v in meta.items() if k != "session_id"}
    return {"session_id": sid, "meta": m, "utterances": out}


def load_sessions(dirs: list[Path], valid: set[str]) -> tuple[list[tuple[dict, list[dict]]], list[str]]:
    sessions, problems = [], []
    for d in dirs:
        for p in sorted(d.rglob("*.txt")):
            meta, utts, probs = parse_file(p, valid)
            meta.setdefault("source_file", str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p))
            batch = p.relative_to(d).parts[0] if len(p.relative_to(d).parts) > 1 else d.name
            meta.setdefault("collection", COLLECTIONS.get(batch[:1], ("other",))[0])
            problems += probs
            sessions.append((meta, utts))
    return sessions, problems


def stats(sessions, label_ids) -> str:
    n_utt = sum(len(u) for _, u in sessions)
    counts = collections.Counter(l for _, us in sessions for u in us for l in u["labels"])
    labelled = sum(1 for _, us in sessions for u in us if u["labels"])
    no_rupture = sum(
        1
        for _, us in sessions
        if not any(l.split("/")[0] in ("withdrawal", "confrontation") for u in us for l in u["labels"])
    )
    lens = [len(u) for _, u in sessions]
    lines = [
        f"sessions: {len(sessions)}  utterances: {n_utt}  labelled: {labelled} ({100 * labelled / max(1, n_utt):.1f}%)"
        f"  sessions without rupture: {no_rupture} ({100 * no_rupture / max(1, len(sessions)):.0f}%)",
        f"utterances per session: min {min(lens, default=0)} max {max(lens, default=0)}",
    ]
    for m, us in sessions:
        timed = [dict(u) for u in us]
        add_times(m["session_id"], timed)
        labelled_s = sum(1 for u in us if u["labels"])
        lines.append(
            f"  {m['session_id']}: {len(us)} utterances, {timed[-1]['end'] / 60 if timed else 0:.1f} min, "
            f"{100 * labelled_s / max(1, len(us)):.1f}% labelled"
        )
    for lab in label_ids:
        lines.append(f"  {counts.get(lab, 0):5d}  {lab}")
    hn = collections.Counter(h for _, us in sessions for u in us for h in u.get("hard_negative", []))
    if hn:
        lines.append("hard negatives (unlabelled on purpose): " + ", ".join(f"{k} {v}" for k, v in sorted(hn.items())))
    text_count = collections.Counter(
        " ".join(words(u["text"])) for _, us in sessions for u in us if len(words(u["text"])) > 6
    )
    reps = [(c, t) for t, c in text_count.items() if c > 2]
    if reps:
        lines.append("texts of more than six words used more than twice (must be fixed):")
        lines += [f"  {c}x  {t}" for c, t in sorted(reps, reverse=True)]
    bad_len = []
    for m, us in sessions:
        spec = next((v for v in COLLECTIONS.values() if v[0] == m.get("collection")), None)
        if spec is None:
            continue
        timed = [dict(u) for u in us]
        add_times(m["session_id"], timed)
        minutes = timed[-1]["end"] / 60 if timed else 0
        if not (spec[1][0] <= len(us) <= spec[1][1] and spec[2][0] <= minutes <= spec[2][1]):
            bad_len.append(f"{m['session_id']} ({len(us)} utterances, {minutes:.1f} min)")
    if bad_len:
        lines.append("sessions outside their collection's length (must be fixed): " + ", ".join(bad_len))
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
        dev, test = order[:n_dev], order[n_dev : n_dev + n_test]
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


def extend_split(
    first: list[dict],
    first_assign: dict[str, str],
    new: list[dict],
    label_ids: list[str],
    seed: int = 17,
    trials: int = 3000,
    min_count: int = 15,
) -> dict[str, str]:
    """Assign the sessions added after the first corpus, keeping the first corpus's split.

    Among ``trials`` seeded random partitions of ``new`` (15% dev, 15% test), keep the one in
    which dev and test — with the first corpus's dev and test sessions — hold every label at least
    ``min_count`` times and at least two sessions of every new collection, and whose per-label
    shares of the whole corpus are closest (squared error) to 15% each. Deterministic.
    """
    rng = random.Random(seed)

    def counts(ss):
        c = collections.Counter()
        for s in ss:
            c.update(l for u in s["utterances"] for l in u["labels"])
        return c

    base = {part: counts([s for s in first if first_assign[s["session_id"]] == part]) for part in ("dev", "test")}
    per = [counts([s]) for s in new]
    total = counts(first) + counts(new)
    kinds = sorted({s["meta"]["collection"] for s in new})
    n_part = round(0.15 * len(new))
    order = list(range(len(new)))
    best, best_score = None, None
    for _ in range(trials):
        rng.shuffle(order)
        parts = {"dev": order[:n_part], "test": order[n_part : 2 * n_part]}
        score, ok = 0.0, True
        for name, idx in parts.items():
            c = collections.Counter(base[name])
            for i in idx:
                c.update(per[i])
            if any(c[l] < min_count for l in label_ids):
                ok = False
                break
            if any(sum(new[i]["meta"]["collection"] == k for i in idx) < 2 for k in kinds):
                ok = False
                break
            score += sum((c[l] / max(1, total[l]) - 0.15) ** 2 for l in label_ids)
        if ok and (best_score is None or score < best_score):
            best, best_score = {k: list(v) for k, v in parts.items()}, score
    if best is None:
        raise SystemExit(f"no split of the new sessions gives every label {min_count}x in dev and test")
    assign = {s["session_id"]: "train" for s in new}
    for name, idx in best.items():
        for i in idx:
            assign[new[i]["session_id"]] = name
    return assign


def align(canon: list[dict]) -> list[dict]:
    """The sessions as the tagger sees them (see :mod:`rupture_nlp.corpus.align`)."""
    sys.path.insert(0, str(ROOT))
    from rupture_nlp.corpus.align import align_session
    from rupture_nlp.records import Session

    return [align_session(Session.from_dict(s)).to_dict() for s in canon]


def asr_align(canon: list[dict]) -> list[dict]:
    """The sessions as the tagger sees their ASR renderings (seed ``ASR_SEED``)."""
    sys.path.insert(0, str(ROOT))
    from rupture_nlp.corpus.align import align_session
    from rupture_nlp.corpus.asr import render_session, speakers_spec, to_vtt
    from rupture_nlp.records import Session

    out = []
    for s in canon:
        r = render_session(Session.from_dict(s), seed=ASR_SEED)
        out.append(align_session(r, vtt=to_vtt(r), speakers=speakers_spec(r)).to_dict())
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for s in rows:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


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
        "txt": lambda s: "".join(f"{'T' if t['speaker'] == 'therapist' else 'C'}: {t['text']}\n" for t in turns(s)),
        "timestamped.txt": lambda s: "".join(
            f"[{fmt_clock(t['start'])[:8]}] {names[t['speaker']]}: {t['text']}\n" for t in turns(s)
        ),
        "csv": lambda s: (
            "speaker,start,end,text\n"
            + "".join(
                f'{names[t["speaker"]]},{t["start"]:.2f},{t["end"]:.2f},"{t["text"].replace(chr(34), chr(34) * 2)}"\n'
                for t in turns(s)
            )
        ),
        "vtt": lambda s: (
            "WEBVTT\n\n"
            + "".join(
                f"{fmt_clock(u['start'])} --> {fmt_clock(u['end'])}\n<v {names[u['speaker']]}>{u['text']}\n\n"
                for u in s["utterances"]
            )
        ),
        "srt": lambda s: "".join(
            f"{i}\n{fmt_clock(u['start'], ',')} --> {fmt_clock(u['end'], ',')}\n{names[u['speaker']]}: {u['text']}\n\n"
            for i, u in enumerate(s["utterances"], 1)
        ),
    }
    for s, (ext, render) in zip(picks, renderers.items()):
        (outdir / f"{s['session_id']}.{ext}").write_text(render(s), encoding="utf-8")


def write_agreement(canon: list[dict], valid: set[str], outdir: Path) -> None:
    """The double-coded sessions as authored: the first coding and the independent second one."""
    if not CODER2.is_dir():
        return
    second, problems = load_sessions([CODER2], valid)
    if problems:
        raise SystemExit("\n".join(problems))
    by_id = {s["session_id"]: s for s in canon}
    first_rows, second_rows = [], []
    for meta, utts in sorted(second, key=lambda x: x[0]["session_id"]):
        one = by_id[meta["session_id"]]
        two = to_canonical({**meta, "collection": one["meta"]["collection"]}, utts)
        if [u["text"] for u in two["utterances"]] != [u["text"] for u in one["utterances"]]:
            raise SystemExit(f"{meta['source_file']}: the second coding's lines differ from the source")
        two["meta"] = {**one["meta"], "coder": 2}
        first_rows.append({**one, "meta": {**one["meta"], "coder": 1}})
        second_rows.append(two)
    write_jsonl(outdir / "coder1.jsonl", first_rows)
    write_jsonl(outdir / "coder2.jsonl", second_rows)
    print(
        f"agreement: {len(first_rows)} double-coded sessions, "
        f"{sum(len(s['utterances']) for s in first_rows)} utterances"
    )


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
    first = [s for s in canon if s["meta"]["collection"] == "stretch"]
    added = [s for s in canon if s["meta"]["collection"] != "stretch"]
    assign = stratified_split(first, label_ids)  # the first corpus keeps its split
    if added:
        assign.update(extend_split(first, assign, added, label_ids))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    for s in canon:
        s["meta"]["split"] = assign[s["session_id"]]
    aligned = align(canon)
    for part in ("train", "dev", "test"):
        rows = [s for s in aligned if assign[s["session_id"]] == part]
        write_jsonl(out / f"{part}.jsonl", rows)
        c = collections.Counter(l for s in rows for u in s["utterances"] for l in u["labels"])
        missing = [l for l in label_ids if not c[l]]
        authored = sum(len(s["utterances"]) for s in canon if assign[s["session_id"]] == part)
        print(
            f"{part}: {len(rows)} sessions, {sum(len(s['utterances']) for s in rows)} units "
            f"({authored} authored utterances)" + (f"; MISSING labels {missing}" if missing else "")
        )
    asr = asr_align(canon)
    for part in ("train", "dev", "test"):
        rows = [s for s in asr if assign[s["session_id"]] == part]
        write_jsonl(out / "asr" / f"{part}.jsonl", rows)
        n_lab = sum(1 for s in rows for u in s["utterances"] if u["labels"])
        print(f"asr/{part}: {len(rows)} sessions, {sum(len(s['utterances']) for s in rows)} units, {n_lab} labelled")
    write_agreement(canon, valid, out / "agreement")
    (out / "splits.json").write_text(json.dumps(dict(sorted(assign.items())), indent=1) + "\n", encoding="utf-8")
    write_examples([s for s in canon if assign[s["session_id"]] == "test"], out / "examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
