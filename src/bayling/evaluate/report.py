"""One report per evaluation: ``report.json`` (all numbers) and ``report.html`` (tables and plots).

The HTML is a single self-contained file, readable offline and safe to mail: CSS is inline and the
plots are matplotlib SVGs embedded in the page (text drawn as paths, so no font or network access is
needed). Plots:

* a languages x systems heatmap of chrF++ (rows: languages, tiers in order; columns: each system's
  pivot->X and X->pivot, labelled with the system's prompt), the FLORES grid view of BayLing 2; rows are
  directions when the directions share no pivot language;
* chrF++ per language as bars grouped by resource tier (``bayling.languages`` tiers), with tier means;
* before/after deltas (tuned - baseline: ``base`` or ``base-fewshot``) per direction, with their 95 % paired
  bootstrap intervals as error bars (:mod:`bayling.evaluate.significance`).

A Δ table gives each interval and counts the directions where tuned is ahead or behind, and how many of those
are significant (the interval excludes 0). A few-shot base drawn with several demonstration seeds shows its mean
and the draws' min–max; Δ is taken against the mean. The off-target and LID-unknown shares stand side by side.

The page also says how each system was prompted (chat, or k-shot completion and where the
demonstrations came from), and marks BLEU "n/a" where it does not apply (unspaced scripts without
spBLEU).

Run as::

    bayling eval report runs/quickstart/eval      # rebuild from metrics.json
"""

from __future__ import annotations

import html
import io
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bayling.errors import DataError, require
from bayling.io import write_json
from bayling.languages import TIERS, get_language

TIER_COLORS = {"high": "#2f6db5", "medium": "#e0902f", "low": "#3a9a5b"}


def _split(direction: str) -> tuple[str, str]:
    s, t = direction.split("-", 1)
    return s, t


def _pivot(directions: list[str]) -> str | None:
    counts = Counter(c for d in directions for c in _split(d))
    if not counts:
        return None
    code, n = counts.most_common(1)[0]
    return code if n >= 2 else None


def _score(per: dict[str, Any], d: str, metric: str = "chrf") -> float | None:
    v = per.get(d, {}).get(metric)
    return v["score"] if isinstance(v, dict) else None


def language_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Per system: chrF++ per language (mean of its directions with the pivot) and per tier."""
    dirs = metrics.get("directions", [])
    pivot = _pivot(dirs)
    out: dict[str, Any] = {"pivot": pivot, "systems": {}}
    for name, per in metrics.get("systems", {}).items():
        by_lang: dict[str, list[float]] = defaultdict(list)
        for d in dirs:
            s, t = _split(d)
            other = t if s == pivot else s if t == pivot else None
            v = _score(per, d)
            if other is not None and v is not None:
                by_lang[other].append(v)
        langs = {c: round(sum(v) / len(v), 2) for c, v in by_lang.items()}
        tiers: dict[str, list[float]] = defaultdict(list)
        for c, v in langs.items():
            tiers[get_language(c).tier].append(v)
        out["systems"][name] = {
            "languages": langs,
            "tiers": {t: round(sum(tiers[t]) / len(tiers[t]), 2) for t in TIERS if tiers[t]},
        }
    return out


def deltas(metrics: dict[str, Any], metric: str = "chrf") -> dict[str, float]:
    """tuned - baseline (``base`` or ``base-fewshot``) per direction (empty unless both were scored)."""
    from bayling.evaluate.config import baseline_system

    systems = metrics.get("systems", {})
    base = baseline_system(systems)
    if base is None or "tuned" not in systems:
        return {}
    out = {}
    for d in metrics.get("directions", []):
        b, t = _score(systems[base], d, metric), _score(systems["tuned"], d, metric)
        if b is not None and t is not None:
            out[d] = round(t - b, 2)
    return out


# ----------------------------------------------------------------------------- plots


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    # no date or creator in the SVG metadata: the same metrics give a byte-identical page
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def _plt() -> Any:
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "svg.hashsalt": "bayling"})
    return plt


def _prompt_label(metrics: dict[str, Any], system: str) -> str:
    rec = metrics.get("prompts", {}).get(system)
    if not rec:
        return system
    if rec.get("prompt") == "fewshot":
        ks = {len(v) for v in rec.get("demos", {}).values()} or {rec.get("k")}
        return f"{system}\n({'/'.join(map(str, sorted(ks)))}-shot)"
    return f"{system}\n(chat)"


def heatmap_data(metrics: dict[str, Any]) -> dict[str, Any]:
    """The chrF++ heatmap as data: ``{"rows": [...], "columns": [...], "values": [[row x column]]}``.

    Rows are languages (tier order) when the directions share a pivot, else directions; there is a column per
    system and direction kind (``eng→X``, ``X→eng``), labelled with the system's prompt.
    """
    dirs = metrics.get("directions", [])
    systems = metrics.get("systems", {})
    pivot = _pivot(dirs)
    if pivot is not None:
        langs = sorted(
            {c for d in dirs for c in _split(d) if c != pivot and pivot in _split(d)},
            key=lambda c: (TIERS.index(get_language(c).tier), c),
        )
        kinds = {f"{pivot[:3]}→X": "{p}-{c}", f"X→{pivot[:3]}": "{c}-{p}"}
        rows = [
            (f"{c} ({get_language(c).tier})", {k: f.format(p=pivot, c=c) for k, f in kinds.items()}) for c in langs
        ]
    else:
        kinds = {"": ""}
        rows = [(d, {"": d}) for d in dirs]
    cols, matrix = [], []
    for name in systems:
        for kind in kinds:
            col = [_score(systems[name], r[1][kind]) for r in rows]
            if any(v is not None for v in col):
                cols.append(f"{kind}\n{_prompt_label(metrics, name)}".strip())
                matrix.append(col)
    values = [[col[i] for col in matrix] for i in range(len(rows))]
    return {
        "rows": [r[0] for r in rows],
        "columns": cols,
        "values": values,
        "by": "language" if pivot else "direction",
    }


def heatmap_svg(metrics: dict[str, Any]) -> str | None:
    """chrF++ heatmap, languages x systems (see :func:`heatmap_data`)."""
    hm = heatmap_data(metrics)
    rows, cols, matrix = hm["rows"], hm["columns"], list(zip(*hm["values"], strict=True)) if hm["values"] else []
    pivot = hm["by"] == "language"
    if not rows or not cols:
        return None
    np = require("numpy", "eval")
    data = np.array([[np.nan if v is None else v for v in col] for col in matrix]).T
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.4 + 1.2 * len(cols), 1.0 + 0.32 * len(rows)))
    im = ax.imshow(data, aspect="auto", cmap="viridis", vmin=0, vmax=max(float(np.nanmax(data)), 1.0))
    ax.set_xticks(range(len(cols)), cols, fontsize=7)
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(data[i, j]):
                ax.text(
                    j,
                    i,
                    f"{data[i, j]:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if data[i, j] < 0.6 * np.nanmax(data) else "black",
                )
    fig.colorbar(im, ax=ax, label="chrF++")
    ax.set_title("chrF++ by language and system" if pivot else "chrF++ by direction and system")
    return _svg(fig)


def tier_bars_svg(metrics: dict[str, Any]) -> str | None:
    """chrF++ per language, grouped and coloured by resource tier (the tuned system when there is one)."""
    summary = language_summary(metrics)["systems"]
    if not summary:
        return None
    name = "tuned" if "tuned" in summary else next(iter(summary))
    langs = summary[name]["languages"]
    if not langs:
        return None
    order = sorted(langs, key=lambda c: (TIERS.index(get_language(c).tier), -langs[c]))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(order) + 1.5), 3.2))
    colors = [TIER_COLORS[get_language(c).tier] for c in order]
    ax.bar(range(len(order)), [langs[c] for c in order], color=colors)
    ax.set_xticks(range(len(order)), order, rotation=60, ha="right", fontsize=7)
    for tier in TIERS:
        idx = [i for i, c in enumerate(order) if get_language(c).tier == tier]
        if idx:
            mean = sum(langs[order[i]] for i in idx) / len(idx)
            ax.hlines(mean, idx[0] - 0.4, idx[-1] + 0.4, colors="black", linestyles="dashed", linewidth=1)
            ax.bar(0, 0, color=TIER_COLORS[tier], label=f"{tier} (mean {mean:.1f})")
    ax.set_ylabel("chrF++ (mean of both directions)")
    ax.set_title(f"chrF++ per language by resource tier ({name})")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _svg(fig)


def delta_bars_svg(metrics: dict[str, Any]) -> str | None:
    """Bars of tuned - base chrF++ and BLEU per direction."""
    dc, db = deltas(metrics, "chrf"), deltas(metrics, "bleu")
    if not dc:
        return None
    dirs = list(dc)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(dirs) + 1.5), 3.2))
    xs = range(len(dirs))
    ivs = (metrics.get("significance") or {}).get("directions", {})
    chrf = [ivs.get(d, {}).get("chrf") for d in dirs]
    err = None
    if all(chrf):  # the 95 % interval as an error bar (asymmetric: the resampled Δ need not centre on Δ)
        err = [
            [max(dc[d] - iv["low"], 0) for d, iv in zip(dirs, chrf, strict=True)],
            [max(iv["high"] - dc[d], 0) for d, iv in zip(dirs, chrf, strict=True)],
        ]
    ax.bar(
        [x - 0.2 for x in xs],
        [dc[d] for d in dirs],
        width=0.4,
        yerr=err,
        capsize=2,
        label="Δ chrF++ (95 % CI)" if err else "Δ chrF++",
        color=["#3a9a5b" if dc[d] >= 0 else "#c0392b" for d in dirs],
    )
    if db:
        ax.bar([x + 0.2 for x in xs], [db.get(d, 0.0) for d in dirs], width=0.4, label="Δ BLEU", color="#7f8c8d")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(list(xs), dirs, rotation=60, ha="right", fontsize=7)
    ax.set_title("Before/after: tuned - base")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _svg(fig)


# ----------------------------------------------------------------------------- HTML


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.2f}"
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _translation_table(metrics: dict[str, Any]) -> str:
    systems = metrics.get("systems", {})
    names = list(systems)
    fields = [
        m
        for m in ("bleu", "chrf", "ter", "comet", "cometkiwi", "off_target", "unknown", "copy")
        if any(m in per.get(d, {}) for per in systems.values() for d in metrics.get("directions", []))
    ]
    labels = {
        "bleu": "BLEU",
        "chrf": "chrF++",
        "ter": "TER",
        "comet": "COMET",
        "cometkiwi": "CometKiwi",
        "off_target": "off-target %",
        "unknown": "LID unknown %",
        "copy": "copy %",
    }
    header = ["direction"] + [f"{labels[f]} {s}" for f in fields for s in names]
    rows = []
    for d in metrics.get("directions", []):
        row: list[Any] = [d]
        for f in fields:
            for s in names:
                row.append(_metric_cell(systems[s].get(d, {}).get(f)))
        rows.append(row)
    return _table(header, rows)


def _metric_cell(v: Any) -> Any:
    """A score, ``n/a``, or ``mean (min–max)`` for a system drawn with several demonstration seeds."""
    if not isinstance(v, dict):
        return v
    if v["score"] is None:
        return "n/a"
    return f"{v['score']:.2f} ({v['min']:.1f}–{v['max']:.1f})" if "min" in v else v["score"]


def _significance_table(metrics: dict[str, Any]) -> str:
    """Δ per direction and of the average, with its 95 % interval, and the counts of (significant) wins."""
    from bayling.evaluate.significance import counts_text, interval_text

    sig = metrics.get("significance") or {}
    if not sig.get("directions"):
        return ""
    labels = {"bleu": "BLEU", "chrf": "chrF++", "ter": "TER"}
    ms = [m for m in ("chrf", "bleu", "ter") if m in sig.get("counts", {})]
    rows = [
        [d, *(interval_text(per.get(m)) for m in ms)]
        for d, per in [*sig["directions"].items(), ("average", sig.get("average", {}))]
    ]
    counts = "".join(f"<li>{html.escape(counts_text(sig['counts'][m], labels[m], sig['baseline']))}</li>" for m in ms)
    return (
        f"<h3>Δ = {html.escape(sig['system'])} - {html.escape(sig['baseline'])}, with 95 % intervals</h3>"
        + _table(["direction", *(f"Δ {labels[m]} [low, high]" for m in ms)], rows)
        + f"<ul>{counts}</ul><p>{html.escape(sig['method'])}; *: significant.</p>"
    )


def _prompts_table(metrics: dict[str, Any]) -> str:
    """How each system was asked to translate (``metrics.json``'s ``prompts``)."""
    from bayling.prompts import fewshot_prompt

    prompts = metrics.get("prompts") or {}
    if not prompts:
        return ""
    rows = []
    for s, rec in prompts.items():
        if rec.get("prompt") == "fewshot":
            ks = sorted({len(v) for v in rec.get("demos", {}).values()}) or [rec["k"]]
            demo = [("<demo source>", "<demo target>")] * min(ks[-1], 1)
            layout = fewshot_prompt("<source>", "eng_Latn", "deu_Latn", demo)
            if ks[-1] > 1:
                layout = layout.replace(
                    "\n\nEnglish: <source>", f"\n\n… ({ks[-1]} demonstrations)\n\nEnglish: <source>"
                )
            rows.append([s, "few-shot completion, cut at the newline", "/".join(map(str, ks)), layout, rec["pool"]])
        else:
            rows.append([s, f"chat ({rec.get('chat_format', 'auto')} format)", 0, rec.get("template", ""), ""])
    table = _table(["system", "prompt", "k", "layout (e.g. English→German)", "demonstrations from"], rows)
    return "<h3>Prompts</h3>" + table.replace("\n", "<br>")


def _signatures(metrics: dict[str, Any]) -> list[str]:
    sigs = set()
    for per in metrics.get("systems", {}).values():
        for scores in per.values():
            for v in scores.values() if isinstance(scores, dict) else []:
                if isinstance(v, dict) and "signature" in v:
                    sigs.add(v["signature"])
    return sorted(sigs)


def _ablation_section(ab: dict[str, Any]) -> str:
    """``bayling run``'s ablation table: per group, the base's and every arm's chrF++ and Δ with its interval."""
    from bayling.evaluate.significance import interval_text

    base = ab["base"]["system"]
    arms = list(ab.get("arms", {}))
    header = ["group", "directions", f"chrF++ {base}"] + [f"chrF++ {a}" for a in arms]
    header += [f"Δ {a} [95 % CI]" for a in arms] + [f"off-target % {a}" for a in arms] + [f"copy % {a}" for a in arms]
    rows = []
    for r in ab.get("rows", []):
        b = r[base]
        cell = f"{b['chrf']:.1f}" + (f" ({b['min']:.1f}–{b['max']:.1f})" if "min" in b else "")
        rows.append(
            [r["group"], r["directions"], cell]
            + [r[a]["chrf"] for a in arms]
            + [interval_text(r[a]["delta"]) for a in arms]
            + [r[a].get("off_target") for a in arms]
            + [r[a].get("copy") for a in arms]
        )
    wins = ", ".join(
        f"{a}: {ab['wins_vs_fewshot'][a]} ahead ({ab['significant_wins_vs_fewshot'][a]} significantly), "
        f"{ab['significant_losses_vs_fewshot'][a]} significantly behind"
        for a in arms
    )
    return (
        f"<h2>Ablation</h2><p>Every arm against {html.escape(base)} on the same {ab.get('sentences_per_direction')} "
        f"sentences per direction ({html.escape(wins)}).</p>" + _table(header, rows)
    )


def _extra_sections(report: dict[str, Any]) -> list[str]:
    parts = []
    if report.get("ablation"):
        parts.append(_ablation_section(report["ablation"]))
    bench = report.get("benchmarks") or {}
    if bench:
        rows = [
            [s, b, lang, r.get("acc", r.get("exact_match")), r.get("acc_norm"), r["n"]]
            for s, per in bench.items()
            for b, langs in per.items()
            for lang, r in langs.items()
        ]
        parts.append(
            "<h2>Knowledge and understanding</h2>"
            + _table(["system", "benchmark", "language", "acc / exact match %", "acc_norm %", "n"], rows)
        )
    oe = report.get("open_ended") or {}
    if oe.get("single"):
        rows = [
            [
                s,
                qs,
                r["score"],
                *(r["by_turn"].get(f"turn{t}") for t in (1, 2)),
                r["penalized"],
                r.get("errors"),
                r["n"],
            ]
            for s, per in oe["single"].items()
            for qs, r in per.items()
        ]
        parts.append(
            "<h2>Open-ended (judge, 1-10)</h2>"
            + _table(["system", "set", "score", "turn 1", "turn 2", "wrong-language", "judge errors", "n"], rows)
        )
    if oe.get("pairwise"):
        rows = [
            [k, r["wins"], r["ties"], r["losses"], r.get("errors"), r["win_rate_adjusted"], r["inconsistent"]]
            for k, r in oe["pairwise"].items()
        ]
        parts.append(
            "<h3>Pairwise (position-swapped)</h3>"
            + _table(
                [
                    "set (tuned vs base)",
                    "wins",
                    "ties",
                    "losses",
                    "judge errors",
                    "win rate % (ties ½)",
                    "inconsistent",
                ],
                rows,
            )
        )
    inter = report.get("interactive") or {}
    if inter.get("refinement"):
        rows = [
            [s, d, t["turn"], t["type"], t["lang"], t["bleu"], t["chrf"], t["off_target"], t.get("term_hit_rate")]
            for s, per in inter["refinement"].items()
            for d, r in per.items()
            for t in r["turns"]
        ]
        parts.append(
            "<h2>Interactive translation: per turn</h2>"
            + _table(
                ["system", "direction", "turn", "type", "ref lang", "BLEU", "chrF++", "off-target %", "term hit %"],
                rows,
            )
        )
    if inter.get("constrained"):
        rows = [
            [
                s,
                d,
                r["hit_rate"],
                r["hit_rate_ci"],
                r["all_constraints"],
                r.get("excluded"),
                r.get("hit_rate_raw"),
                r["bleu"]["score"],
                r["chrf"]["score"],
                r["n"],
            ]
            for s, per in inter["constrained"].items()
            for d, r in per.items()
        ]
        parts.append(
            "<h2>Constrained translation</h2>"
            + _table(
                [
                    "system",
                    "direction",
                    "hit rate %",
                    "hit rate (any case) %",
                    "all constraints %",
                    "excluded (off-target/copy) %",
                    "hit rate, echoes counted %",
                    "BLEU",
                    "chrF++",
                    "n",
                ],
                rows,
            )
        )
    return parts


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}.plot{margin:1em 0}
code{font-size:12px;background:#f6f6f6;padding:1px 4px}"""


def render_html(report: dict[str, Any]) -> str:
    """The report page: summary, translation table, plots, other sections and metric signatures."""
    m = report["translation"]
    plots = [p for p in (heatmap_svg(m), tier_bars_svg(m), delta_bars_svg(m)) if p]
    title = f"bayling evaluation: {html.escape(str(report.get('name', '')))}"
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title><style>{CSS}</style>"
        f"</head><body><h1>{title}</h1>",
        f"<p>Test set <b>{html.escape(str(m.get('testset')))}</b>, {m.get('sentences_per_direction')} sentences per "
        f"direction, {len(m.get('directions', []))} directions, systems: {html.escape(', '.join(m.get('systems', {})))}.</p>",
        "<h2>Translation</h2>",
        _translation_table(m),
        _significance_table(m),
        _prompts_table(m),
        *[f"<div class='plot'>{p}</div>" for p in plots],
        *_extra_sections(report),
        "<h2>Metric signatures</h2><ul>"
        + "".join(f"<li><code>{html.escape(s)}</code></li>" for s in _signatures(m))
        + "</ul></body></html>",
    ]
    return "\n".join(parts)


def write_report(
    out_dir: str | Path, metrics: dict[str, Any], extra: dict[str, Any] | None = None, name: str = ""
) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    keep = ("testset", "sentences_per_direction", "directions", "systems", "prompts", "significance")
    report = {
        "name": name,
        "translation": {k: metrics[k] for k in keep if k in metrics},
        "languages": language_summary(metrics),
        "deltas": {"chrf": deltas(metrics, "chrf"), "bleu": deltas(metrics, "bleu")},
        "heatmap": heatmap_data(metrics),
        **(extra or {}),
    }
    write_json(out / "report.json", report)
    page = render_html(report)
    tmp = out / "report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out / "report.html")
    return out / "report.json", out / "report.html"


def rebuild_report(eval_dir: str | Path) -> tuple[Path, Path]:
    """Rebuild the report of an evaluation directory from its ``metrics.json`` (and saved extras)."""
    d = Path(eval_dir)
    f = d / "metrics.json"
    if not f.is_file():
        raise DataError(f"{f} not found: run `bayling eval` first")
    from bayling.validate import fail, read_json

    metrics = read_json(f)  # not UTF-8, not JSON: one line naming the file
    if not isinstance(metrics, dict):
        raise fail(str(f), "the metrics object written by `bayling eval`", metrics)
    check_metrics_shape(metrics, str(f))
    extra = {k: metrics.get(k) for k in ("benchmarks", "open_ended", "interactive") if metrics.get(k)}
    ablation = d.parent / "ablation" / "ablation.json"  # `bayling run`'s ablation stage, beside eval/
    if ablation.is_file():
        extra["ablation"] = read_json(ablation)
    # no blanket except here: a file of the right shape that the report still fails on is a bug of bayling's
    return write_report(d, metrics, extra, name=metrics.get("name", d.parent.name))


SCORED = ("bleu", "spbleu", "chrf", "ter", "comet", "cometkiwi")
"""The per-direction entries that are metrics (objects with a score); the others are counts, rates or draws."""


def check_metrics_shape(metrics: dict[str, Any], where: str) -> None:
    """The shape the report reads: ``directions`` (strings), ``systems`` ({system: {direction: {metric: {...}}}}),
    ``prompts`` ({system: {...}}) and the parts' sections (objects).

    Raises:
        DataError: ``metrics.json: systems.tuned: expected an object, found a list of 2 items``.
    """
    from bayling.validate import at, check, check_fields

    check_fields(metrics, {"name": str, "directions": [str]}, where)
    for key in ("systems", "prompts", "benchmarks", "open_ended", "interactive", "perplexity"):
        check(metrics.get(key) or {}, dict, at(where, key))
    for s, per in (metrics.get("systems") or {}).items():
        for d, scores in check(per, dict, at(where, f"systems.{s}")).items():
            for m, score in check(scores, dict, at(where, f"systems.{s}.{d}")).items():
                # a metric ({"score", "signature"}) or its draws are objects; counts and rates (n, copy) numbers
                if score is not None:
                    check(
                        score,
                        dict if isinstance(score, dict) or m in SCORED else "number",
                        at(where, f"systems.{s}.{d}.{m}"),
                    )
    for s, rec in (metrics.get("prompts") or {}).items():
        check(rec, dict, at(where, f"prompts.{s}"))
