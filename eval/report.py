"""Summaries and reports of a QA run: ``report.json``, PNG plots and a self-contained ``report.html``.

Everything is computed from ``results.jsonl``, so a report can be rebuilt from a finished or resumed run at any
time. A metric no question reported stays missing (``null`` / "–"), never 0: a build without compression has
no compression ratio, not a ratio of 0.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.answer_metrics import ANSWER_METRICS
from eval.ragas_judge import METRICS as RAGAS_METRICS

__all__ = ["HEADLINE", "percentile", "summarize", "write_report"]

HEADLINE = (
    "exact_match", "token_f1", "contains", "abstained_answerable", "abstained_unanswerable", "mrr", "ndcg@10",
    *RAGAS_METRICS,
)  # fmt: skip
LOWER_IS_BETTER = {"abstained_answerable"}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the value of an actual request, as latency SLOs are stated)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize_config(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Means of every score, RAGAS means with how many were judged and why the rest are missing, latency p50/p95
    per stage, mean tokens per budget term, mean compression ratio."""
    answered = [r for r in records if not r.get("error")]
    scores: dict[str, list[float]] = {}
    for record in answered:
        for key, value in record.get("scores", {}).items():
            scores.setdefault(key, []).append(float(value))
    ragas: dict[str, dict[str, Any]] = {}
    for metric in RAGAS_METRICS:
        values, reasons = [], Counter()
        judged = [r["ragas"][metric] for r in answered if metric in (r.get("ragas") or {})]
        for outcome in judged:
            if outcome.get("value") is None:
                reasons[str(outcome.get("reason"))[:120]] += 1
            else:
                values.append(float(outcome["value"]))
        ragas[metric] = {
            "mean": _mean(values),
            "valid": len(values),
            "judged": len(judged),
            "missing_reasons": dict(reasons.most_common(5)),
        }
    stages: dict[str, list[float]] = {}
    for record in answered:
        for stage, ms in record.get("stages_ms", {}).items():
            stages.setdefault(stage, []).append(ms)
    walls = [r["wall_ms"] for r in answered if "wall_ms" in r]
    latency = {
        stage: {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}
        for stage, values in stages.items()
    }
    before = [r["before_generation_ms"] for r in answered if r.get("before_generation_ms") is not None]
    if before:
        latency["before generation"] = {"p50": percentile(before, 50), "p95": percentile(before, 95), "n": len(before)}
    if walls:
        latency["total (wall)"] = {"p50": percentile(walls, 50), "p95": percentile(walls, 95), "n": len(walls)}
    tokens: dict[str, list[float]] = {}
    for record in answered:
        for term, count in record.get("tokens", {}).items():
            tokens.setdefault(term, []).append(count)
    ratios = [r["compression_ratio"] for r in answered if r.get("compression_ratio") is not None]
    return {
        "questions": len(records),
        "answered": len(answered),
        "errors": [{"id": r["id"], "error": r["error"]} for r in records if r.get("error")],
        "metrics": {key: _mean(values) for key, values in sorted(scores.items())},
        "metric_counts": {key: len(values) for key, values in sorted(scores.items())},
        "ragas": ragas,
        "latency_ms": latency,
        "tokens": {term: _mean(counts) for term, counts in sorted(tokens.items())},
        "compression_ratio": _mean(ratios),
    }


def summarize(records: Sequence[Mapping[str, Any]], configs: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {config: summarize_config([r for r in records if r["config"] == config]) for config in configs}


def flat_metrics(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """One config's quality metrics as a flat ``{name: value}``: what ``compare`` diffs and the tables show."""
    flat: dict[str, float | None] = dict(summary.get("metrics", {}))
    for metric, info in summary.get("ragas", {}).items():
        flat[metric] = info.get("mean")
    return flat


# ---- plots ----------------------------------------------------------------------------------------------------


def _plot_metrics(summaries: Mapping[str, Mapping[str, Any]], path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    configs = list(summaries)
    keys = [k for k in HEADLINE if any(flat_metrics(s).get(k) is not None for s in summaries.values())]
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(keys) * max(1, len(configs)) * 0.35 + 4), 4))
    width = 0.8 / len(configs)
    for i, config in enumerate(configs):
        flat = flat_metrics(summaries[config])
        present = [(x, flat[k]) for x, k in enumerate(keys) if flat.get(k) is not None]
        ax.bar([x + i * width for x, _ in present], [v for _, v in present], width, label=config)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(keys))], keys, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title("Metrics per config (a missing value has no bar; see the tables)")
    ax.legend(fontsize="small", ncols=min(4, len(configs)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _stage_order(summaries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    order: list[str] = []
    for summary in summaries.values():
        for stage in summary["latency_ms"]:
            if stage != "total (wall)" and stage not in order:
                order.append(stage)
    return order


def _plot_latency(summaries: Mapping[str, Mapping[str, Any]], path: Path) -> Path | None:
    """A waterfall per config: each stage's p50 starts where the previous stage's ended. Generation dwarfs the
    rest on a CPU, so the right panel repeats the waterfall without it."""
    import matplotlib.pyplot as plt

    stages = _stage_order(summaries)
    if not stages:
        return None
    configs = list(summaries)
    colors = plt.get_cmap("tab20")
    color = {stage: colors(i % 20) for i, stage in enumerate(stages)}
    panels = [("all stages", stages), ("without generation", [s for s in stages if s != "generate"])]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.5 * len(configs) + 2.2))
    for ax, (title, shown) in zip(axes, panels, strict=True):
        for row, config in enumerate(configs):
            start = 0.0
            for stage in shown:
                ms = summaries[config]["latency_ms"].get(stage, {}).get("p50", 0.0)
                ax.barh(row, ms, left=start, color=color[stage], label=stage if row == 0 else None)
                start += ms
        ax.set_yticks(range(len(configs)), configs)
        ax.invert_yaxis()
        ax.set_xlabel("ms (p50 per stage, stacked in pipeline order)")
        ax.set_title(f"Latency waterfall: {title}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize="small", ncols=min(8, len(labels)), loc="lower center")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


BUDGET_TERMS = {"S": "system", "T": "tools", "H": "history", "R": "evidence", "U": "question"}
"""Additive prompt terms of the budget trace (B ≈ S + T + H + R + U); B, reserve and used are totals, not terms."""


def stacked_terms(tokens: Mapping[str, float | None]) -> dict[str, float]:
    """The parts of one config's mean token use that add up: the budget terms plus the answer, or, for a pipeline
    without a budget stage, the prompt and the answer."""
    terms = {label: tokens[f"budget.{key}"] for key, label in BUDGET_TERMS.items() if f"budget.{key}" in tokens}
    if not terms and "generate.prompt_tokens" in tokens:
        terms["prompt"] = tokens["generate.prompt_tokens"]
    if "generate.completion_tokens" in tokens:
        terms["answer"] = tokens["generate.completion_tokens"]
    return {label: float(value or 0.0) for label, value in terms.items()}


def _plot_tokens(summaries: Mapping[str, Mapping[str, Any]], path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    stacks = {config: stacked_terms(summary["tokens"]) for config, summary in summaries.items()}
    terms: list[str] = []
    for stack in stacks.values():
        terms += [t for t in stack if t not in terms]
    if not terms:
        return None
    configs = list(summaries)
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(configs) + 1.8))
    colors = plt.get_cmap("tab10")
    for row, config in enumerate(configs):
        start = 0.0
        for i, term in enumerate(terms):
            count = stacks[config].get(term, 0.0)
            ax.barh(row, count, left=start, color=colors(i % 10), label=term if row == 0 else None)
            start += count
    ax.set_yticks(range(len(configs)), configs)
    ax.invert_yaxis()
    ax.set_xlabel("mean tokens per question")
    ax.set_title("Token budget breakdown (prompt terms the trace reports, and the answer)")
    ax.legend(fontsize="small", ncols=3, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- HTML -----------------------------------------------------------------------------------------------------

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ragline QA report {{ run_id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}.missing{color:#999}
details{margin:0.3rem 0}summary{cursor:pointer}.evidence{font-size:0.85em;color:#444;white-space:pre-wrap}
.gold{background:#e8f5e9}.err{color:#b00}img{max-width:100%}
</style></head><body>
<h1>QA evaluation {{ run_id }}</h1>
<p>Dataset <code>{{ manifest.dataset }}</code> ({{ manifest.questions }} questions), collection
<code>{{ manifest.collection }}</code>, generator <code>{{ manifest.generator }}</code>,
judge {% if manifest.judge %}<code>{{ manifest.judge.model }}</code> at <code>{{ manifest.judge.base_url }}</code>
{% else %}none (RAGAS off){% endif %}. Created {{ manifest.created }}.</p>
{% if row_errors %}<h2>Skipped rows</h2><ul>{% for e in row_errors %}<li>line {{ e.line }}: {{ e.reason }}</li>
{% endfor %}</ul>{% endif %}
{% if skipped %}<h2>Skipped configs</h2><ul>{% for s in skipped %}<li><b>{{ s.name }}</b>: {{ s.reason }}</li>
{% endfor %}</ul>{% endif %}

<h2>Metrics per config</h2>
<table id="metrics"><tr><th>config</th><th>answered</th>{% for k in metric_keys %}<th>{{ k }}</th>{% endfor %}</tr>
{% for c in configs %}<tr><td>{{ c }}</td><td>{{ summaries[c].answered }}/{{ summaries[c].questions }}</td>
{% for k in metric_keys %}{{ cell(flat[c].get(k)) }}{% endfor %}</tr>{% endfor %}</table>
<dl id="metric-definitions">{% for k in metric_keys if k in definitions %}<dt>{{ k }}</dt><dd>{{ definitions[k] }}</dd>
{% endfor %}</dl>
{% if plots.metrics %}<img src="{{ plots.metrics }}" alt="metrics per config">{% endif %}

<h2>RAGAS (judge: {{ manifest.judge.model if manifest.judge else "none" }})</h2>
<table id="ragas"><tr><th>config</th>{% for m in ragas_metrics %}<th>{{ m }}</th><th>valid/judged</th>{% endfor %}</tr>
{% for c in configs %}<tr><td>{{ c }}</td>{% for m in ragas_metrics %}{% set r = summaries[c].ragas[m] %}
{{ cell(r.mean) }}<td>{{ r.valid }}/{{ r.judged }}</td>{% endfor %}</tr>{% endfor %}</table>
{% for c in configs %}{% for m in ragas_metrics %}{% for reason, n in summaries[c].ragas[m].missing_reasons.items() %}
<div class="missing">{{ c }} / {{ m }}: {{ n }} missing: {{ reason }}</div>{% endfor %}{% endfor %}{% endfor %}

<h2>Latency per stage (ms, p50 / p95)</h2>
<table id="latency"><tr><th>config</th>{% for s in stages %}<th>{{ s }}</th>{% endfor %}<th>total (wall)</th></tr>
{% for c in configs %}<tr><td>{{ c }}</td>{% for s in stages + ["total (wall)"] %}
{% set l = summaries[c].latency_ms.get(s) %}<td>{% if l %}{{ "%.0f"|format(l.p50) }} / {{ "%.0f"|format(l.p95) }}
{% else %}<span class="missing">–</span>{% endif %}</td>{% endfor %}</tr>{% endfor %}</table>
{% if plots.latency %}<img src="{{ plots.latency }}" alt="latency waterfall">{% endif %}

<h2>Tokens and compression</h2>
<table id="tokens"><tr><th>config</th>{% for t in token_terms %}<th>{{ t }}</th>{% endfor %}
<th>compression ratio</th></tr>
{% for c in configs %}<tr><td>{{ c }}</td>{% for t in token_terms %}{{ cell(summaries[c].tokens.get(t), "%.0f") }}
{% endfor %}{{ cell(summaries[c].compression_ratio) }}</tr>{% endfor %}</table>
{% if plots.tokens %}<img src="{{ plots.tokens }}" alt="token budget breakdown">{% endif %}

<h2>Configs</h2><table><tr><th>config</th><th>options</th><th>note</th></tr>
{% for c in configs %}<tr><td>{{ c }}</td><td><code>{{ manifest.configs[c].options | tojson }}</code></td>
<td>{{ manifest.configs[c].note }}</td></tr>{% endfor %}</table>

<h2>Questions</h2>
{% for q in questions %}<details><summary><b>{{ q.id }}</b> {{ q.question }}</summary>
<p>Gold answers: {{ q.answers | join(" | ") }}
{% if q.gold_ids %}; gold docs: {{ q.gold_ids | join(", ") }}{% endif %}</p>
{% for r in q.results %}<details><summary>{{ r.config }}:
{% if r.error %}<span class="err">{{ r.error }}</span>{% else %}{{ r.answer[:200] }}{% endif %}</summary>
{% if not r.error %}<p>scores: {% for k, v in r.scores.items() %}{{ k }} {{ "%.2f"|format(v) }}; {% endfor %}
{% for m, o in (r.get("ragas") or {}).items() %}{{ m }}
{% if o.value is none %}<span class="missing">– ({{ o.reason }})</span>
{% else %}{{ "%.2f"|format(o.value) }}{% endif %}; {% endfor %}</p>
<p>Full answer:</p><div class="evidence">{{ r.answer }}</div>
<p>Ranking: {{ r.ranking | map(attribute="doc_id") | join(", ") }}</p>
{% for e in r.context %}<div class="evidence{% if e.doc_id in q.gold_ids %} gold{% endif %}">[{{ loop.index }}]
{{ e.doc_id }}: {{ e.text[:600] }}</div>{% endfor %}{% endif %}</details>{% endfor %}
</details>{% endfor %}
</body></html>
"""


def _cell(value: float | None, fmt: str = "%.3f") -> str:
    from markupsafe import Markup

    if value is None:
        return Markup('<td class="missing">–</td>')
    return Markup(f"<td>{fmt % value}</td>")


def write_report(
    folder: Path,
    manifest: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Write ``report.json``, the PNG plots and ``report.html`` into ``folder``; return the report dict."""
    import jinja2
    import matplotlib

    matplotlib.use("Agg")
    defaults = {"dataset": "?", "questions": len({r["id"] for r in records}), "collection": "?", "generator": "?"}
    manifest = {**defaults, "created": "", "judge": None, "skipped": [], "row_errors": [], **manifest}
    manifest["configs"] = {name: {"options": {}, "note": "", **(c or {})} for name, c in manifest["configs"].items()}
    configs = [c for c in manifest["configs"] if any(r["config"] == c for r in records)]
    summaries = summarize(records, configs)
    plots = {
        "metrics": _plot_metrics(summaries, folder / "metrics.png") if configs else None,
        "latency": _plot_latency(summaries, folder / "latency.png") if configs else None,
        "tokens": _plot_tokens(summaries, folder / "tokens.png") if configs else None,
    }
    plots = {name: path.name if path else None for name, path in plots.items()}
    report = {
        "run_id": folder.name,
        "manifest": dict(manifest),
        "summary": summaries,
        "plots": plots,
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))

    flat = {c: flat_metrics(summaries[c]) for c in configs}
    metric_keys = [k for k in HEADLINE if k in RAGAS_METRICS or any(k in s["metrics"] for s in summaries.values())]
    metric_keys = [k for k in metric_keys if k not in RAGAS_METRICS]
    metric_keys += sorted({k for s in summaries.values() for k in s["metrics"]} - set(metric_keys) - set(RAGAS_METRICS))
    by_question: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = by_question.setdefault(
            record["id"],
            {"id": record["id"], "question": record["question"], "answers": record.get("answers", []),
             "gold_ids": record.get("gold_ids", []), "results": []},
        )  # fmt: skip
        entry["results"].append(record)
    for entry in by_question.values():
        entry["results"].sort(key=lambda r: configs.index(r["config"]) if r["config"] in configs else 99)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(_TEMPLATE).render(
        run_id=folder.name,
        manifest=manifest,
        configs=configs,
        summaries=summaries,
        flat=flat,
        metric_keys=metric_keys,
        definitions=ANSWER_METRICS,
        ragas_metrics=RAGAS_METRICS,
        stages=_stage_order(summaries),
        token_terms=sorted({t for s in summaries.values() for t in s["tokens"]}),
        plots=plots,
        questions=list(by_question.values()),
        row_errors=manifest.get("row_errors", []),
        skipped=manifest.get("skipped", []),
        cell=_cell,
    )
    (folder / "report.html").write_text(html, encoding="utf-8")
    return report
