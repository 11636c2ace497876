#!/usr/bin/env python3
"""Benchmark of `rupture segment`: speed against a bare spaCy sentencizer, and memory.

    .venv/bin/python scripts/bench_segment.py [--sessions 200] [--rounds 3] [--memory 50,200]

1. Generates a corpus of therapy-style sessions (this script's own sentences) as files in
   every input format (txt, timestamped txt, CSV, WebVTT, SRT) in a temporary folder.
2. Speed: words per second of the whole `rupture segment` job (read, decode, detect, segment,
   time, write JSONL atomically: :func:`rupture_nlp.ingest.segment_files`) against plain
   ``spacy.blank("en")`` + ``sentencizer`` over the same speech text, already in memory,
   in the same run. Rounds alternate the jobs; each job is timed session by session, and
   the headline is CPU time summed over each session's best round (steady on a shared
   machine, see :func:`bench_speed`); the best whole round (CPU and wall) is printed too.
   Aim: ratio >= 0.5.
3. Memory: in a fresh process per corpus size, the peak of Python allocations
   (tracemalloc) while segmenting a corpus of that many sessions, pipeline already built.
   Streaming means the peak does not grow with the number of sessions.
4. When the bundled corpus exists (``corpora/*.jsonl``): how well the segmenter recovers its
   authors' utterance lines from turns made by joining them.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# --------------------------------------------------------------------------- corpus
THERAPIST = [
    "How has the week been for you?",
    "What was that like?",
    "Can you say a bit more about that?",
    "I wonder if something I said earlier didn't sit right with you.",
    "Let's slow down for a moment.",
    "It sounds like part of you wanted to go and part of you didn't.",
    "That makes sense to me.",
    "I might have pushed too hard just now, and I'm sorry about that.",
    "Shall we look at the diary together?",
    "When you say fine, what does fine mean this week?",
    "I noticed you went quiet when I mentioned your father.",
    "We could try something different today, if you'd like.",
    "What would you want to be different by the summer?",
    "So the plan was to go to the shop on your own--",
    "Take your time.",
    "Where do you feel that in your body?",
]
CLIENT = [
    "It was fine, I suppose.",
    "I don't know.",
    "Work was busy again, the usual.",
    "I did the homework, mostly.",
    "It's just... I thought this would be quicker.",
    "My sister rang on Sunday and it turned into a row.",
    "I'm not sure this is helping, to be honest.",
    "Nothing really happened.",
    "[sighs] It's hard to explain.",
    "I went to the shop but I left before the till.",
    "Maybe. I haven't thought about it that way.",
    "You keep asking me that.",
    "It was okay -- It was better than last time, anyway.",
    "[laughs] Not really.",
    "I felt stupid, sitting there with the worksheet.",
    "We had a good weekend, actually.",
]
BACKCHANNELS = ["Mm-hmm.", "Yeah.", "Okay.", "Right.", "Mm.", "Uh-huh."]


def make_session(rng: random.Random, n_turns: int) -> list[tuple[str, list[str]]]:
    """Turns of one session: (speaker letter, sentences). Each sentence is one source line/cue."""
    turns = []
    for i in range(n_turns):
        who = "T" if i % 2 == 0 else "C"
        pool = THERAPIST if who == "T" else CLIENT
        if rng.random() < 0.15:
            sents = [rng.choice(BACKCHANNELS)]
        else:
            sents = [rng.choice(pool) for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))]
            if rng.random() < 0.1:
                sents.append("[pause]")
        turns.append((who, sents))
    return turns


def clock(t: float, sep: str = ".") -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(turns: list[tuple[str, list[str]]], fmt: str) -> str:
    """One session in one input format (times: 0.4 s per word plus short pauses)."""
    names = {"T": "Therapist", "C": "Client"}
    cues, t = [], 3.0
    for who, sents in turns:
        for s in sents:
            dur = 0.4 * len(s.split()) + 0.2
            cues.append((who, s, t, t + dur))
            t += dur + 0.3
        t += 0.6
    if fmt == "txt":
        return "".join(f"{who}: {' '.join(s)}\n" for who, s in turns)
    if fmt == "timestamped.txt":
        out, i = [], 0
        for who, sents in turns:
            out.append(f"[{clock(cues[i][2])[:8]}] {names[who]}: {' '.join(sents)}\n")
            i += len(sents)
        return "".join(out)
    if fmt == "csv":
        return "speaker,start,end,text\n" + "".join(f'{names[w]},{a:.2f},{b:.2f},"{s}"\n' for w, s, a, b in cues)
    if fmt == "vtt":
        return "WEBVTT\n\n" + "".join(f"{clock(a)} --> {clock(b)}\n<v {names[w]}>{s}\n\n" for w, s, a, b in cues)
    if fmt == "srt":
        return "".join(
            f"{i}\n{clock(a, ',')} --> {clock(b, ',')}\n{names[w]}: {s}\n\n" for i, (w, s, a, b) in enumerate(cues, 1)
        )
    raise ValueError(fmt)


FORMATS = ("txt", "timestamped.txt", "csv", "vtt", "srt")


def generate(folder: Path, n_sessions: int, seed: int = 7) -> tuple[list[Path], list[str]]:
    """Write ``n_sessions`` files (formats in turn) and return them with the speech text of
    each session (turn texts joined by newlines: the text both pipelines segment)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files, texts = [], []
    for i in range(n_sessions):
        turns = make_session(rng, rng.randint(90, 150))
        fmt = FORMATS[i % len(FORMATS)]
        p = folder / f"s{i:05d}.{fmt}"
        p.write_text(render(turns, fmt), encoding="utf-8")
        files.append(p)
        texts.append("\n".join(" ".join(s) for _, s in turns))
    return files, texts


# --------------------------------------------------------------------------- speed
def bench_speed(n_sessions: int, rounds: int) -> dict:
    """CPU and wall seconds of four jobs over the same corpus, per session and per round.

    Every job is timed session by session (the whole ``rupture segment`` job through its
    ``progress`` callback, so it still runs as one batch writing one file); rounds alternate
    the jobs. ``session`` is the sum over sessions of each one's best time in any round,
    ``run`` the best whole round. On a shared machine the first is the steadier measure: a
    job of a few seconds rarely runs a whole round undisturbed, but each of its sessions
    does in some round, and a short job (the bare sentencizer) is no likelier to than a
    long one."""
    import spacy

    from rupture_nlp.ingest import default_pipeline, segment_files
    from rupture_nlp.readers import read_turns
    from rupture_nlp.segment import doc_to_session, make_doc

    clocks = {"cpu": time.process_time, "wall": time.perf_counter}
    with tempfile.TemporaryDirectory() as td:
        files, texts = generate(Path(td) / "in", n_sessions)
        words = sum(len(t.split()) for t in texts)
        bare = spacy.blank("en")
        bare.add_pipe("sentencizer")
        nlp = default_pipeline()
        out = Path(td) / "out.jsonl"
        turns = [read_turns(p) for p in files]
        n = len(files)

        def timed(items, fn) -> tuple[int, dict[str, list[float]]]:
            """Run ``fn`` on each item: (sum of its results, seconds of each item per clock)."""
            secs: dict[str, list[float]] = {k: [] for k in clocks}
            total = 0
            for item in items:
                c0, w0 = time.process_time(), time.perf_counter()
                total += fn(item)
                secs["cpu"].append(time.process_time() - c0)
                secs["wall"].append(time.perf_counter() - w0)
            return total, secs

        def run_bare():
            return timed(texts, lambda t: sum(1 for _ in bare(t).sents))

        def run_tokenizer():
            return timed(texts, lambda t: len(bare.make_doc(t)))

        def run_pipeline():
            return timed(
                turns, lambda tm: len(doc_to_session(nlp(make_doc(nlp, tm[0], session_id="s", meta=tm[1]))).utterances)
            )

        def run_full():
            secs: dict[str, list[float]] = {k: [] for k in clocks}
            last = {k: c() for k, c in clocks.items()}

            def on_file(event) -> None:
                if event.done == 0:  # the start event: no file done yet
                    return
                for k, c in clocks.items():
                    now = c()
                    secs[k].append(now - last[k])
                    last[k] = now

            rep = segment_files(files, out, nlp=nlp, progress=on_file)
            assert not rep.failures, rep.failures[:3]
            for k, c in clocks.items():  # writing the file out counts too
                secs[k][-1] += c() - last[k]
            return rep.utterances, secs

        jobs = {"bare": run_bare, "tokenizer": run_tokenizer, "pipeline": run_pipeline, "full": run_full}
        for fn in jobs.values():  # warm-up: caches, lazy imports
            fn()
        best = {(j, k): [1e9] * n for j in jobs for k in clocks}
        run = {(j, k): 1e9 for j in jobs for k in clocks}
        units = {}
        for _ in range(rounds):
            for name, fn in jobs.items():
                units[name], secs = fn()
                for k in clocks:
                    best[name, k] = [min(a, b) for a, b in zip(best[name, k], secs[k])]
                    run[name, k] = min(run[name, k], sum(secs[k]))
    return {
        "sessions": n_sessions,
        "words": words,
        "units": units,
        "session_wps": {(j, k): words / sum(v) for (j, k), v in best.items()},
        "run_wps": {jk: words / v for jk, v in run.items()},
    }


# --------------------------------------------------------------------------- memory
def memory_child(n_sessions: int) -> None:
    """Run in a fresh process: print the tracemalloc peak of segmenting n sessions."""
    import resource
    import tracemalloc

    from rupture_nlp.ingest import default_pipeline, segment_files

    with tempfile.TemporaryDirectory() as td:
        files, texts = generate(Path(td) / "in", n_sessions)
        nlp = default_pipeline()
        segment_files(files[:5], Path(td) / "warm.jsonl", nlp=nlp)
        del texts
        tracemalloc.start()
        rep = segment_files(files, Path(td) / "out.jsonl", nlp=nlp)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # and streaming canonical JSONL through again (one big file in, one out)
        tracemalloc.start()
        rep2 = segment_files([Path(td) / "out.jsonl"], Path(td) / "again.jsonl", nlp=nlp)
        _, peak2 = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = (Path(td) / "out.jsonl").stat().st_size
    print(
        json.dumps(
            {
                "sessions": rep.sessions,
                "utterances": rep.utterances,
                "peak_mib": peak / 2**20,
                "jsonl_sessions": rep2.sessions,
                "jsonl_mib": size / 2**20,
                "jsonl_peak_mib": peak2 / 2**20,
                "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def bench_memory(sizes: list[int]) -> list[dict]:
    out = []
    for n in sizes:
        r = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n)], capture_output=True, text=True, check=True
        )
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return out


# --------------------------------------------------------------------------- corpus agreement
def corpus_agreement() -> dict | None:
    """Line boundaries of the bundled corpus recovered from joined turns (with and without
    knowing where the lines were), and utterances produced per authored line."""
    import re

    from rupture_nlp.records import read_sessions
    from rupture_nlp.segment import UtteranceSegmenter

    paths = [p for p in (ROOT / "corpora" / f"{s}.jsonl" for s in ("train", "dev", "test")) if p.exists()]
    if not paths:
        return None
    seg = UtteranceSegmenter()
    event = re.compile(r"\[[^\[\]\n]{1,80}\]")
    res = {}
    for mode in ("with line hints", "text only"):
        gold = found = hit = lines = units = 0
        for path in paths:
            for s in read_sessions(path):
                for turn in s.turns():
                    starts, pos = [], 0
                    for u in turn:
                        starts.append(pos)
                        pos += len(u.text) + 1
                    text = " ".join(u.text for u in turn)
                    evs = [(m.start(), m.end(), m.group()[1:-1]) for m in event.finditer(text)]
                    got = {a for a, _ in seg.split(text, starts if mode == "with line hints" else (), evs)}
                    lines += len(turn)
                    units += len(got)
                    g = set(starts[1:])
                    gold += len(g)
                    found += len(got - {0})
                    hit += len(g & got)
        res[mode] = {
            "line_boundaries": gold,
            "recovered": hit / max(1, gold),
            "lines": lines,
            "utterances_per_line": units / max(1, lines),
        }
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200, help="sessions in the speed corpus (default 200)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory", default="50,200", help="corpus sizes (sessions) for the memory check")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    sp = bench_speed(args.sessions, args.rounds)
    ses, run, units = sp["session_wps"], sp["run_wps"], sp["units"]
    print(
        f"corpus: {sp['sessions']} sessions, {sp['words']:,} words (txt, timestamped txt, csv, vtt, srt); "
        f"words/s of CPU time, each session's best of {args.rounds} rounds (best whole round, and its wall "
        "time, in brackets)"
    )
    rows = [
        ("bare spacy.blank('en') + sentencizer", "bare", f"{units['bare']:,} sentences"),
        ("  its tokenizer alone (both pay it)", "tokenizer", ""),
        ("rupture pipeline, turns in memory", "pipeline", f"{units['pipeline']:,} utterances"),
        ("rupture segment, files -> JSONL", "full", f"{units['full']:,} utterances"),
    ]
    for label, key, note in rows:
        print(f"  {label:38s} {ses[key, 'cpu']:>10,.0f} ({run[key, 'cpu']:>9,.0f}, {run[key, 'wall']:>9,.0f})  {note}")
    ratio = ses["full", "cpu"] / ses["bare", "cpu"]
    print(
        f"ratio rupture segment / bare: {ratio:.2f} (whole rounds: {run['full', 'cpu'] / run['bare', 'cpu']:.2f} CPU, "
        f"{run['full', 'wall'] / run['bare', 'wall']:.2f} wall; aim >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}); "
        f"pipeline alone / bare: {ses['pipeline', 'cpu'] / ses['bare', 'cpu']:.2f}"
    )
    sizes = [int(x) for x in args.memory.split(",") if x.strip()]
    if sizes:
        mem = bench_memory(sizes)
        for m in mem:
            print(
                f"memory: {m['sessions']:>5} sessions ({m['utterances']:,} utterances): peak {m['peak_mib']:.1f} MiB "
                f"traced; JSONL pass-through of the {m['jsonl_mib']:.1f} MiB output: peak {m['jsonl_peak_mib']:.1f} MiB; "
                f"process max RSS {m['maxrss_mib']:.0f} MiB"
            )
        if len(mem) > 1:
            a, b = mem[0], mem[-1]
            print(
                f"memory growth for {b['sessions'] / a['sessions']:.0f}x the sessions: "
                f"x{b['peak_mib'] / a['peak_mib']:.2f} (transcripts), x{b['jsonl_peak_mib'] / a['jsonl_peak_mib']:.2f} (JSONL)"
            )
    agree = corpus_agreement()
    if agree:
        for mode, r in agree.items():
            print(
                f"bundled corpus ({mode}): {100 * r['recovered']:.1f}% of {r['line_boundaries']:,} line boundaries "
                f"inside turns recovered; {r['utterances_per_line']:.2f} utterances per authored line"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
