#!/usr/bin/env python3
"""Write ``rupture_nlp/data/calibration.jsonl``: the sessions the ``openvino-int8`` backend is
calibrated on (``rupture_nlp.model.backends.calibration_inputs``).

Stretches of consecutive utterances from project-written corpus sessions of the train split: half
clean (``corpora/train.jsonl``), half their ASR-style renderings (``corpora/asr/train.jsonl``), from
different sessions, labels removed. Nothing from dev or test (``scripts/bench_tag.py`` scores on
dev), nothing a user tags. Deterministic: rerun it after the corpus changes.

    python scripts/make_calibration.py [--stretches 5] [--length 30]
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def stretches(path: Path, offset: int, n: int, length: int) -> list:
    """``n`` stretches of ``length`` utterances from the middle of sessions offset, offset+2, ...
    of ``path`` (every other session, so the clean and ASR halves come from different ones)."""
    from rupture_nlp.records import Session, read_sessions

    sessions = list(read_sessions(path))
    out = []
    for s in sessions[offset::2][:n]:
        mid = max(0, len(s.utterances) // 2 - length // 2)
        utts = [u for u in s.utterances[mid : mid + length]]
        for u in utts:
            u.labels = []
        out.append(Session(session_id=f"calibration-{s.session_id}", utterances=utts, meta={"source": s.session_id}))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stretches", type=int, default=5, help="stretches from each of the clean and ASR renderings")
    ap.add_argument("--length", type=int, default=30, help="utterances per stretch")
    a = ap.parse_args()
    from rupture_nlp.records import write_sessions

    sessions = stretches(ROOT / "corpora" / "train.jsonl", 0, a.stretches, a.length)
    sessions += stretches(ROOT / "corpora" / "asr" / "train.jsonl", 1, a.stretches, a.length)
    out = ROOT / "rupture_nlp" / "data" / "calibration.jsonl"
    write_sessions(out, sessions)
    print(f"{out.relative_to(ROOT)}: {len(sessions)} sessions, {sum(len(s.utterances) for s in sessions)} utterances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
