"""Static HTML report: an index page and one page per session (timeline PNG embedded, no CDN)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Sequence

from ..records import Session
from ..schema import LabelSchema
from .episodes import REPAIR, Episode, has_times

COLORS = {"withdrawal": "#3b6fb6", "confrontation": "#c0392b", "repair": "#2e8b57"}
OUTCOME_COLORS = {"resolved": "#2e8b57", "unresolved": "#e67e22", "no_repair": "#999999"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right}
.utt td{border:none;border-bottom:1px solid #f0f0f0}
.who{font-weight:600;white-space:nowrap}.time{color:#888;white-space:nowrap;font-variant-numeric:tabular-nums}
.lab{display:inline-block;font-size:.78em;border-radius:3px;padding:0 4px;margin:1px;color:#fff}
tr.withdrawal{background:#eaf1fb}tr.confrontation{background:#fbeaea}tr.repair{background:#eaf7ef}
tr.withdrawal.confrontation{background:#f5eaf5}
.wrap{overflow-x:auto}
.note{color:#666;font-size:.85em}img{max-width:100%}
"""


def _color(cat: str) -> str:
    if cat in COLORS:
        return COLORS[cat]
    palette = ["#8e44ad", "#16a085", "#d35400", "#2c3e50", "#7f8c8d"]
    return palette[sum(map(ord, cat)) % len(palette)]


def _fmt_time(t: float | None) -> str:
    if t is None:
        return ""
    m, s = divmod(int(round(t)), 60)
    return f"{m // 60:d}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m:d}:{s:02d}"


def _cell(v: Any) -> str:
    if v is None:
        return "<td></td>"
    if isinstance(v, (int, float)):
        return f'<td class="num">{v:g}</td>' if isinstance(v, float) else f'<td class="num">{v}</td>'
    return f"<td>{html.escape(str(v))}</td>"


def table_html(rows: Sequence[dict], columns: Sequence[str], links: dict[str, str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            if links and c == "session_id" and r.get(c) in links:
                cells.append(f'<td><a href="{html.escape(links[r[c]])}">{html.escape(str(r[c]))}</a></td>')
            else:
                cells.append(_cell(r.get(c)))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def timeline_png(
    s: Session, schema: LabelSchema, episodes: list[Episode], segment_minutes: float, segment_utterances: int
) -> bytes:
    """A PNG timeline: markers by category along session time, repairs, episodes shaded by outcome."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    timed = has_times(s)
    xs, last = [], 0.0
    for i, u in enumerate(s.utterances):
        if timed:
            last = (u.start / 60.0) if u.start is not None else last
            xs.append(last)
        else:
            xs.append(float(i))
    cats = schema.category_ids
    fig, ax = plt.subplots(figsize=(11, 0.9 + 0.55 * len(cats)), dpi=100)
    for ep in episodes:
        end = ep.repairs[-1] if ep.repairs else ep.last
        x0, x1 = xs[ep.first], xs[end]
        pad = 0.08 if timed else 0.4
        ax.axvspan(x0 - pad, x1 + pad, color=OUTCOME_COLORS[ep.outcome], alpha=0.18, lw=0)
    for row, c in enumerate(cats):
        pts = [
            (xs[i], u)
            for i, u in enumerate(s.utterances)
            if any(l in schema.label_ids and schema.category_of(l) == c for l in (u.labels or []))
        ]
        if pts:
            ax.scatter(
                [p[0] for p in pts],
                [row] * len(pts),
                marker="|" if c != REPAIR else "^",
                s=220 if c != REPAIR else 60,
                color=_color(c),
                linewidths=2,
            )
    span = xs[-1] if xs else 1.0
    step = segment_minutes if timed else segment_utterances
    b = step
    while b < span:
        ax.axvline(b, color="#bbb", lw=0.8, ls=":")
        b += step
    ax.set_yticks(range(len(cats)), cats)
    ax.set_ylim(-0.7, len(cats) - 0.3)
    ax.set_xlim(-0.5 if not timed else 0, max(span, 1.0) * 1.01 + (0.5 if not timed else 0))
    ax.set_xlabel("session time (minutes)" if timed else "utterance")
    ax.invert_yaxis()
    handles = [
        Patch(color=OUTCOME_COLORS[o], alpha=0.35, label=f"episode: {o.replace('_', ' ')}") for o in OUTCOME_COLORS
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.45 if len(cats) < 4 else -0.3),
        ncol=3,
        frameon=False,
        fontsize=8,
    )
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def session_page(
    s: Session,
    schema: LabelSchema,
    srow: dict,
    segrows: list[dict],
    eprows: list[dict],
    episodes: list[Episode],
    segment_minutes: float,
    segment_utterances: int,
) -> str:
    png = base64.b64encode(timeline_png(s, schema, episodes, segment_minutes, segment_utterances)).decode()
    meta = "".join(
        f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>"
        for k, v in s.meta.items()
        if not isinstance(v, (dict, list))
    )
    cats = schema.category_ids
    summary_cols = (
        ["n_utterances", "duration_min"]
        + [f"n_{c}" for c in cats]
        + [f"rate10_{c}" for c in cats]
        + [
            "n_episodes",
            "n_resolved",
            "n_unresolved",
            "n_no_repair",
            "share_resolved",
            "therapist_repair_utterances",
            "first_rupture_s",
        ]
    )
    lines = []
    for u in s.utterances:
        labs = [l for l in (u.labels or []) if l in schema.label_ids]
        classes = " ".join(sorted({schema.category_of(l) for l in labs}))
        badges = "".join(
            f'<span class="lab" style="background:{_color(schema.category_of(l))}">{html.escape(l)}</span>'
            for l in labs
        )
        top = sorted((u.scores or {}).items(), key=lambda kv: -kv[1])[:5]
        tip = "; ".join(f"{l} {p:.2f}" for l, p in top)
        lines.append(
            f'<tr class="{classes}" id="{html.escape(u.id)}"'
            + (f' title="{html.escape(tip)}"' if tip else "")
            + f'><td class="time">{_fmt_time(u.start)}</td><td class="who">{html.escape(u.speaker)}</td>'
            f"<td>{html.escape(u.text)}</td><td>{badges}</td></tr>"
        )
    seg_cols = ["segment", "seg_start_s", "n_utterances"] + [f"n_{c}" for c in cats] + ["max_score"]
    ep_cols = [
        "episode",
        "first_marker",
        "kind",
        "n_markers",
        "outcome",
        "repair_utterance",
        "repairs",
        "utterances_to_repair",
        "seconds_to_repair",
    ]
    body = (
        f'<p><a href="../index.html">&larr; all sessions</a></p><h1>Session {html.escape(s.session_id)}</h1>'
        f"<table>{meta}</table><h2>Summary</h2>{table_html([srow], summary_cols)}"
        f'<h2>Timeline</h2><img alt="timeline of rupture markers and repairs" src="data:image/png;base64,{png}">'
        f'<p class="note">Bars: rupture markers; triangles: repair strategies; shading: episodes by outcome; '
        f"dotted lines: segment boundaries.</p>"
        f"<h2>Episodes</h2>{table_html(eprows, ep_cols) if eprows else '<p>No rupture episodes.</p>'}"
        f"<h2>Segments</h2>{table_html(segrows, seg_cols)}"
        f'<h2>Transcript</h2><p class="note">Labelled utterances are highlighted; hover a line for its '
        f'strongest scores.</p><table class="utt">{"".join(lines)}</table>'
    )
    return page(f"rupture-nlp: session {s.session_id}", body)


def index_page(srows: list[dict], schema: LabelSchema, links: dict[str, str]) -> str:
    cats = schema.category_ids
    n = len(srows)
    tot = {c: sum(r[f"n_{c}"] for r in srows) for c in cats}
    eps = sum(r["n_episodes"] for r in srows)
    res = sum(r["n_resolved"] for r in srows)
    minutes = sum(r["duration_min"] or 0 for r in srows)
    summary = [
        {
            "sessions": n,
            "utterances": sum(r["n_utterances"] for r in srows),
            "minutes": round(minutes, 1) if minutes else None,
            **{f"n_{c}": tot[c] for c in cats},
            **{f"rate10_{c}": round(10 * tot[c] / minutes, 3) if minutes else None for c in cats},
            "episodes": eps,
            "share_resolved": round(res / eps, 3) if eps else None,
            "sessions_with_rupture": sum(1 for r in srows if r["n_episodes"]),
        }
    ]
    meta_cols = sorted({k for r in srows for k in r if k.startswith("meta_")})
    cols = (
        ["session_id"]
        + meta_cols
        + ["n_utterances", "duration_min"]
        + [f"n_{c}" for c in cats]
        + ["n_episodes", "share_resolved", "first_rupture_s"]
    )
    body = (
        f"<h1>rupture-nlp report</h1><h2>Corpus summary</h2>{table_html(summary, list(summary[0]))}"
        f"<h2>Sessions</h2>{table_html(srows, cols, links)}"
        f'<p class="note">Tables: sessions.csv, segments.csv, episodes.csv (columns in README.txt).</p>'
    )
    return page("rupture-nlp report", body)
