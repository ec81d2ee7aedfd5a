"""The context inspector's data: an answer's trace turned into tables and chart data.

Pure functions over ``Answer.trace`` (a JSON-like dict), so they are unit-tested without Streamlit and work the
same on a trace from the API. Each returns ``None`` (or an empty list) for a part the pipeline did not record —
a configuration without positioning, a trace from before the token budget existed — and the view says "not
recorded" instead of inventing a value or failing on a missing key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import altair as alt

Trace = Mapping[str, Any]

NOT_RECORDED = "not recorded"
SCORE_LABELS = {"bm25": "BM25", "dense": "dense", "fusion": "fused", "rerank": "reranked", "reranker": "reranked"}
"""Column names of the scoring stages; any other stage that records ``hits`` gets its own name as the label."""
BUDGET_PARTS = (
    ("S", "system prompt"),
    ("T", "tool schemas"),
    ("H", "history"),
    ("R", "retrieved evidence"),
    ("U", "question"),
)
"""The prompt-budget terms the assemble stage records, in prompt order."""
POSITIONING_STAGES = ("positioning", "position", "reorder")
COMPRESSION_STAGES = ("compression", "compress")
_ORDER_KEYS = ("order", "final_order", "chunk_ids", "positions")
_BEFORE_KEYS = ("tokens_before", "before_tokens", "original_tokens", "origin_tokens", "before")
_AFTER_KEYS = ("tokens_after", "after_tokens", "compressed_tokens", "after")
_RATIO_KEYS = ("ratio", "compression_ratio", "rate")


def stages(trace: Trace) -> list[dict[str, Any]]:
    """The stage entries in execution order (an empty list for a trace without any)."""
    return [dict(s) for s in trace.get("stages") or [] if isinstance(s, Mapping) and "stage" in s]


def find_stage(trace: Trace, *names: str) -> dict[str, Any] | None:
    """The first stage named exactly one of ``names``; failing that, the first whose name starts with one."""
    entries = stages(trace)
    for entry in entries:
        if entry["stage"] in names:
            return entry
    for entry in entries:
        if any(str(entry["stage"]).startswith(name) for name in names):
            return entry
    return None


def score_label(stage: str) -> str:
    if stage in SCORE_LABELS:
        return SCORE_LABELS[stage]
    return "reranked" if stage.startswith("rerank") else stage


def scored_stages(trace: Trace) -> list[dict[str, Any]]:
    """Stages that recorded scored candidates (``hits``): the searches, fusion, reranking."""
    return [s for s in stages(trace) if isinstance(s.get("hits"), list)]


def stage_hits(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One stage's recorded candidates with their rank (1-based), as table rows."""
    return [
        {"rank": rank, "chunk_id": h.get("chunk_id"), "doc_id": h.get("doc_id"), "score": h.get("score")}
        for rank, h in enumerate(entry.get("hits") or [], start=1)
        if isinstance(h, Mapping)
    ]


def _chunk_id(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        value = item.get("chunk_id", item.get("id"))
        return str(value) if value is not None else None
    return None


@dataclass(frozen=True)
class Order:
    """The evidence order of the prompt, and which stage it comes from."""

    chunk_ids: list[str]
    source: str
    strategy: str | None = None
    note: str | None = None


def final_order(trace: Trace) -> Order | None:
    """The order after positioning; without a positioning entry, the selection order (and a note saying so)."""
    entry = find_stage(trace, *POSITIONING_STAGES)
    if entry is not None:
        for key in _ORDER_KEYS:
            if isinstance(entry.get(key), list):
                ids = [i for i in map(_chunk_id, entry[key]) if i is not None]
                strategy = entry.get("strategy", entry.get("positioning", entry.get("method")))
                return Order(ids, entry["stage"], str(strategy) if strategy is not None else None)
    select = find_stage(trace, "select")
    if select is not None and isinstance(select.get("chunk_ids"), list):
        ids = [i for i in map(_chunk_id, select["chunk_ids"]) if i is not None]
        note = "positioning " + NOT_RECORDED + ": this is the selection order" if entry is None else None
        return Order(ids, "select", note=note)
    return None


def candidate_rows(trace: Trace) -> list[dict[str, Any]]:
    """One row per candidate chunk: its score in each scoring stage, dedup fate, selection and final position.

    Stages record their top candidates only, so a blank cell means "not in that stage's recorded list".
    Rows are ordered by final position, then selection, then the last scoring stage's rank.
    """
    rows: dict[str, dict[str, Any]] = {}
    ranks: dict[str, list[int]] = {}
    scored = scored_stages(trace)
    labels = [score_label(s["stage"]) for s in scored]
    for entry, label in zip(scored, labels, strict=True):
        for hit in stage_hits(entry):
            chunk_id = hit["chunk_id"]
            if chunk_id is None:
                continue
            row = rows.setdefault(chunk_id, {"chunk_id": chunk_id, "doc_id": hit["doc_id"]})
            row[label] = hit["score"]
            ranks.setdefault(chunk_id, []).append(hit["rank"])
    dedup = find_stage(trace, "dedup")
    duplicates = {
        d.get("chunk_id"): d.get("duplicate_of") for d in (dedup or {}).get("dropped") or [] if isinstance(d, Mapping)
    }
    select = find_stage(trace, "select")
    selected = [i for i in map(_chunk_id, (select or {}).get("chunk_ids") or []) if i is not None]
    order = final_order(trace)
    final = order.chunk_ids if order is not None and order.source != "select" else []
    for chunk_id in [*duplicates, *selected, *final]:
        rows.setdefault(chunk_id, {"chunk_id": chunk_id, "doc_id": None})
    for chunk_id, row in rows.items():
        for label in labels:
            row.setdefault(label, None)
        row["duplicate of"] = duplicates.get(chunk_id) if dedup is not None else NOT_RECORDED
        row["selected"] = selected.index(chunk_id) + 1 if chunk_id in selected else None
        row["final position"] = final.index(chunk_id) + 1 if chunk_id in final else None
    columns = ["chunk_id", "doc_id", *dict.fromkeys(labels), "duplicate of", "selected", "final position"]
    rows = {chunk_id: {column: row.get(column) for column in columns} for chunk_id, row in rows.items()}
    far = len(rows) + 1

    def sort_key(row: dict[str, Any]) -> tuple[int, int, int]:
        last_rank = ranks.get(row["chunk_id"], [far])[-1]
        return (row["final position"] or far, row["selected"] or far, last_rank)

    return sorted(rows.values(), key=sort_key)


@dataclass(frozen=True)
class Budget:
    """The prompt's token budget as the assemble stage recorded it (B, its terms, the output reserve)."""

    total: int | None
    parts: list[tuple[str, str, int]]
    reserve: int | None
    used: int | None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def free(self) -> int | None:
        used = self.used if self.used is not None else sum(tokens for _, _, tokens in self.parts)
        return max(self.total - used, 0) if self.total is not None else None

    def bar(self) -> list[dict[str, Any]]:
        """Segments of the budget bar: each term, the unused budget, and the reserve for the answer."""
        segments = [{"part": f"{key} {label}", "tokens": tokens} for key, label, tokens in self.parts]
        if self.free is not None:
            segments.append({"part": "unused budget", "tokens": self.free})
        if self.reserve is not None:
            segments.append({"part": "answer reserve", "tokens": self.reserve})
        return [dict(s, order=i) for i, s in enumerate(segments)]


def _number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def budget(trace: Trace) -> Budget | None:
    """The ``budget`` dict of the assemble stage (or of any stage that records one)."""
    candidates = [find_stage(trace, "assemble"), *stages(trace)]
    raw = next((s["budget"] for s in candidates if s is not None and isinstance(s.get("budget"), Mapping)), None)
    if raw is None:
        return None
    parts = [(key, label, tokens) for key, label in BUDGET_PARTS if (tokens := _number(raw.get(key))) is not None]
    return Budget(_number(raw.get("B")), parts, _number(raw.get("reserve")), _number(raw.get("used")), dict(raw))


@dataclass(frozen=True)
class Compression:
    """Context size before and after compression; ``kept`` is after/before (0.25 = a quarter was kept)."""

    method: str | None
    before: int | None
    after: int | None
    recorded_ratio: float | None
    details: dict[str, Any]
    applied: bool | None = None
    """False when ``auto`` found the evidence within its allowance and left it as it was."""
    sources: list[dict[str, Any]] = field(default_factory=list)
    """Per-source before/after, when recorded."""

    @property
    def kept(self) -> float | None:
        if self.before and self.after is not None:
            return self.after / self.before
        return None


def _first(entry: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((entry[k] for k in keys if k in entry and entry[k] is not None), None)


def compression(trace: Trace) -> Compression | None:
    entry = find_stage(trace, *COMPRESSION_STAGES)
    if entry is None:
        return None
    ratio = _first(entry, _RATIO_KEYS)
    details = {k: v for k, v in entry.items() if k not in ("stage", "items_in", "items_out", "ms", "sources")}
    method = _first(entry, ("method", "compressor", "model", "mode"))
    applied = entry.get("compressed")
    sources = [dict(s) for s in entry.get("sources") or [] if isinstance(s, Mapping)]
    return Compression(
        method=str(method) if method is not None else None,
        before=_number(_first(entry, _BEFORE_KEYS)),
        after=_number(_first(entry, _AFTER_KEYS)),
        recorded_ratio=float(ratio) if isinstance(ratio, int | float) and not isinstance(ratio, bool) else None,
        details=details,
        applied=applied if isinstance(applied, bool) else None,
        sources=sources,
    )


def waterfall(trace: Trace) -> list[dict[str, Any]]:
    """Each stage's span on one time axis. Stages run one after the other, so each starts where the last ended;
    a stage traced as ``concurrent_with`` one already drawn (BM25 beside the dense search) starts with it, and the
    next stage starts when the longer of the two has finished."""
    rows: list[dict[str, Any]] = []
    started: dict[str, float] = {}
    end = 0.0
    for entry in stages(trace):
        ms = entry.get("ms")
        if not isinstance(ms, int | float) or isinstance(ms, bool):
            continue
        partner = entry.get("concurrent_with")
        begin = started[partner] if isinstance(partner, str) and partner in started else end
        started[entry["stage"]] = begin
        rows.append({"stage": entry["stage"], "start_ms": round(begin, 2), "end_ms": round(begin + ms, 2), "ms": ms})
        end = max(end, begin + ms)
    return rows


def stage_summary(trace: Trace) -> list[dict[str, Any]]:
    """One line per stage: counts, time and its other recorded details, for the overview table."""
    rows = []
    for entry in stages(trace):
        details = {k: v for k, v in entry.items() if k not in ("stage", "items_in", "items_out", "ms", "hits")}
        rows.append(
            {
                "stage": entry["stage"],
                "in": entry.get("items_in"),
                "out": entry.get("items_out"),
                "ms": entry.get("ms"),
                "details": ", ".join(f"{k}={_short(v)}" for k, v in details.items()),
            }
        )
    return rows


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- charts ----------------------------------------------------------------------------------------------
def budget_chart(value: Budget) -> alt.LayerChart:
    """One horizontal bar: the prompt terms, the unused budget, then the answer reserve, each segment labelled
    with its key (S, T, H, R, U, free, reserve) when wide enough to hold it."""
    segments, start = [], 0
    for segment in value.bar():
        key = segment["part"].split(" ")[0] if segment["part"][1:2] == " " else segment["part"].split(" ")[-1]
        key = "free" if segment["part"] == "unused budget" else key
        segments.append({**segment, "key": key, "start": start, "end": start + segment["tokens"]})
        start += segment["tokens"]
    total = max(start, 1)
    for segment in segments:
        segment["mid"] = (segment["start"] + segment["end"]) / 2
        segment["label"] = segment["key"] if segment["tokens"] / total >= 0.03 else ""
    parts = [s["part"] for s in segments]
    base = alt.Chart(alt.Data(values=segments))
    bars = base.mark_bar(height=30).encode(
        x=alt.X("start:Q", title="tokens", scale=alt.Scale(domain=[0, total])),
        x2="end:Q",
        color=alt.Color("part:N", sort=parts, scale=alt.Scale(domain=parts), legend=None),
        tooltip=["part:N", "tokens:Q"],
    )
    labels = base.mark_text(color="black").encode(x="mid:Q", text="label:N")
    return (bars + labels).properties(height=40)


def waterfall_chart(rows: list[dict[str, Any]]) -> alt.Chart:
    """Latency waterfall: one bar per stage from its start to its end, in execution order."""
    order = [r["stage"] for r in rows]
    return (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            x=alt.X("start_ms:Q", title="ms since the query started"),
            x2="end_ms:Q",
            y=alt.Y("stage:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False)),
            tooltip=["stage:N", "ms:Q", "start_ms:Q"],
        )
        .properties(height=max(26 * len(rows), 60))
    )
