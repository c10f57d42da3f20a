"""Model cards: a ``README.md`` in the Hub's format beside every adapter (``train/final``) and merged model.

The Hub reads a card's YAML header (``base_model``, ``library_name``, ``language``, ``license``, ``tags``,
``datasets``, ``model-index``) for search, the model tree and the evaluation table; the body is for people.
bayling writes the card when training finishes and rewrites it after the eval stage, so ``model-index``
holds exactly the tuned system's numbers from ``eval/metrics.json``, each with its sacreBLEU signature,
test set, split and sentence count. The body adds the base-vs-tuned table, the data mix, the training
configuration and the exact command that made the model. ``bayling push`` uploads the card with the model.

It sits beside :mod:`bayling.pipeline`, on top of the stages: a card reads the whole run (its config, the data
stage's stats, the training summary, the eval stage's metrics), and only the pipeline and ``bayling push`` write
one. The command that made the model is given by the caller (the CLI passes its command line to
:func:`bayling.pipeline.run`, which records it in the train stage's marker).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayling import __version__
from bayling.languages import expand_languages
from bayling.layout import RunLayout

if TYPE_CHECKING:  # the pipeline imports this module (lazily) to write cards
    from bayling.pipeline import RunConfig

EMBEDDED_BASE = "google/gemma-3-270m"
"""The Hub id of the embedded default (shipped as a GGUF quantisation of this model)."""

_METRIC_NAMES = {"bleu": "BLEU", "chrf": "chrF++", "ter": "TER"}
_METHODS = {"lora": "LoRA", "qlora": "QLoRA", "full": "full fine-tuning"}
_TESTSETS = {  # eval.testset -> (model-index dataset type, display name, split)
    "flores200": ("facebook/flores", "FLORES-200", "devtest"),
    "wmt22": ("wmt22", "WMT22 general test", "test"),
    "ntrex": ("MicrosoftTranslator/NTREX", "NTREX-128", "test"),
}


def process_command() -> str:
    """This process's command line, for a card whose caller gave none (a library call, not the CLI)."""
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


# ----------------------------------------------------------------------------- metadata


def base_model_id(name_or_path: str, resolved: str | Path | None = None) -> str | None:
    """The Hub id of a base model reference: a Hub id itself, the embedded alias, or a HF-cache snapshot."""
    from bayling.hub import snapshot_path
    from bayling.models import EMBEDDED_ALIASES, HUB_ID, split_hub_id

    if name_or_path in EMBEDDED_ALIASES:
        return EMBEDDED_BASE
    if HUB_ID.match(name_or_path) and not Path(name_or_path).expanduser().exists():
        return split_hub_id(name_or_path)[0]
    for p in (name_or_path, resolved):
        snap = snapshot_path(p) if p and Path(p).exists() else None
        if snap:
            return snap.split("@")[0]
    return None


def base_license(base_id: str | None, base_dir: str | Path | None) -> dict[str, str]:
    """``license`` (plus ``license_name``/``license_link`` for ``other``) taken from the base model's card."""
    from huggingface_hub import ModelCard

    readme = Path(base_dir) / "README.md" if base_dir else None
    if readme is not None and readme.is_file():
        try:
            data = ModelCard.load(readme, ignore_metadata_errors=True).data
        except Exception:  # noqa: BLE001 - a base card without YAML: fall through
            data = None
        if data is not None and data.license:
            out = {"license": data.license}
            out.update({k: v for k in ("license_name", "license_link") if (v := getattr(data, k, None))})
            return out
    if base_id and base_id.split("/")[0] == "google" and "gemma" in base_id.lower():
        return {"license": "gemma"}
    return {}


def iso_languages(codes: list[str]) -> list[str]:
    """FLORES codes -> the ISO 639-1 codes the Hub indexes (639-3 where a language has no 639-1 code)."""
    from bayling.languages import get_language

    out: list[str] = []
    for code in codes:
        lang = get_language(code)
        iso = lang.iso639_1 or lang.iso639_3
        if iso not in out:
            out.append(iso)
    return out


def _hub_datasets(cfg: RunConfig) -> list[str]:
    from bayling.hub_data import hub_dataset_ids

    return hub_dataset_ids([cfg.data.source, cfg.data.flores_dir or "", *cfg.data.instructions])


def eval_results(metrics: dict[str, Any], cfg: RunConfig, system: str = "tuned") -> list[Any]:
    """``model-index`` entries for one system of ``eval/metrics.json`` (translation and benchmark scores)."""
    from huggingface_hub import EvalResult

    testset = str(metrics.get("testset", ""))
    if testset in _TESTSETS:
        ds_type, ds_name, split = _TESTSETS[testset]
    elif testset.startswith("hf:"):
        from bayling.hub_data import parse_hf

        ref = parse_hf(testset)
        ds_type, ds_name, split = ref.repo_id, ref.repo_id, ref.split or "devtest"
    elif testset == "heldout":
        ds_type, ds_name, split = "bayling/heldout", f"held-out records of {cfg.data.source}", "heldout"
    else:
        ds_type, ds_name, split = testset, Path(testset).name or testset, "test"
    n = metrics.get("sentences_per_direction")
    results = []
    scores = metrics.get("systems", {}).get(system, {})
    for direction in metrics.get("directions", []):
        src, _, tgt = direction.partition("-")
        for metric, label in _METRIC_NAMES.items():
            entry = scores.get(direction, {}).get(metric)
            if not isinstance(entry, dict) or entry.get("score") is None:
                continue
            results.append(
                EvalResult(
                    task_type="translation",
                    task_name=f"Translation {src} to {tgt}",
                    dataset_type=ds_type,
                    dataset_name=ds_name,
                    dataset_config=direction,
                    dataset_split=split,
                    dataset_args={"sentences": scores[direction].get("n", n)},
                    metric_type=metric,
                    metric_name=label,
                    metric_value=entry["score"],
                    metric_config=entry.get("signature"),
                )
            )
    for bench, by_lang in (metrics.get("benchmarks", {}).get(system) or {}).items():
        for lang, summary in by_lang.items():
            for key in ("accuracy", "exact_match"):
                if isinstance(summary, dict) and isinstance(summary.get(key), int | float):
                    results.append(
                        EvalResult(
                            task_type="multiple-choice" if key == "accuracy" else "question-answering",
                            dataset_type=bench,
                            dataset_name=bench,
                            dataset_config=lang,
                            dataset_args={"items": summary.get("n")},
                            metric_type=key,
                            metric_value=summary[key],
                        )
                    )
    return results


# ----------------------------------------------------------------------------- body


def _read_json(path: Path) -> dict[str, Any]:
    """A run file the card is made from (``{}`` when absent); a damaged one is a one-line error, never a card
    written as if it held nothing."""
    from bayling.validate import read_json_object

    return read_json_object(path) if path.is_file() else {}


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else ("n/a" if x is None else str(x))


def _eval_table(metrics: dict[str, Any]) -> list[str]:
    systems = list(metrics.get("systems", {}))
    directions = metrics.get("directions", [])
    if not systems or not directions:
        return []
    metric_names = [
        m for m in _METRIC_NAMES if any(m in metrics["systems"][s].get(d, {}) for s in systems for d in directions)
    ]
    head = ["direction"] + [f"{_METRIC_NAMES[m]} {s}" for m in metric_names for s in systems]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in directions:
        cells = [d]
        for m in metric_names:
            for s in systems:
                score = metrics["systems"][s].get(d, {}).get(m, {}).get("score")
                cells.append("" if score is None else f"{score:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    sigs = sorted(
        {
            f"{_METRIC_NAMES[m]}: `{metrics['systems'][s][d][m]['signature']}`"
            for m in metric_names
            for s in systems
            for d in directions
            if metrics["systems"][s].get(d, {}).get(m, {}).get("signature")
        }
    )
    return lines + ["", "sacreBLEU signatures: " + "; ".join(sigs)] if sigs else lines


def _body(
    cfg: RunConfig,
    run_dir: Path,
    model_dir: Path,
    base_id: str | None,
    base_ref: str,
    metrics: dict | None,
    cmd: str,
    repo_id: str | None,
) -> str:
    from bayling.config import to_dict

    layout = RunLayout(run_dir)
    stats = _read_json(layout.data_stats)
    summary = _read_json(layout.train_summary)
    t = cfg.train
    is_adapter = (model_dir / "adapter_config.json").is_file()
    where = repo_id or str(model_dir)
    title = f"{cfg.name}: {'LoRA adapter' if is_adapter else 'fine-tuned model'} on {base_id or base_ref}"
    lines = [f"# {title}", ""]
    lines.append(
        f"Multilingual instruction tuning with bayling {__version__}: "
        "interactive-translation dialogues, cross-lingual instructions and general instructions (after BayLing / "
        f"BayLing 2), trained with {_METHODS.get(t.method, t.method)} on "
        f"`{base_id or base_ref}`."
    )
    if cfg.model.name_or_path in ("gemma-3-270m", "embedded", "default"):
        lines += [
            "",
            f"The base weights were bayling's embedded default: the Q4_K_M GGUF quantisation of `{EMBEDDED_BASE}`, "
            "de-quantised to safetensors; applied to the original weights the adapter behaves close to, not "
            "exactly as, what was evaluated here.",
        ]
    lines += ["", "## Use", "", "```python"]
    if is_adapter:
        lines += [
            "from peft import AutoPeftModelForCausalLM",
            "from transformers import AutoTokenizer",
            "",
            f'model = AutoPeftModelForCausalLM.from_pretrained("{where}")  # loads the base model too',
            f'tokenizer = AutoTokenizer.from_pretrained("{where}")',
        ]
    else:
        lines += [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f'model = AutoModelForCausalLM.from_pretrained("{where}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{where}")',
        ]
    lines += ["```", "", "or `bayling chat RUN_DIR` with the run directory that produced it.", ""]

    lines += ["## Evaluation", ""]
    if metrics:
        n = metrics.get("sentences_per_direction")
        lines.append(
            f"Test set `{metrics.get('testset')}`, {n} sentences per direction; `tuned` is this model, `base` is "
            f"`{base_id or base_ref}` prompted the same way. Evaluation settings: `{json.dumps(to_dict(cfg.eval), sort_keys=True)}`."
        )
        lines += ["", *_eval_table(metrics), ""]
    else:
        lines += ["Not evaluated yet (the card is rewritten with the scores when the eval stage runs).", ""]

    lines += ["## Training data", ""]
    d = cfg.data
    lines.append(
        f"- parallel source: `{d.source}`" + (f" (FLORES split `{d.flores_split}`)" if d.source == "flores200" else "")
    )
    lines.append(f"- languages: {', '.join(d.languages)}; pivots: {', '.join(d.pivot_languages) or 'any'}")
    lines.append(f"- general instructions from: {', '.join(f'`{s}`' for s in d.instructions)}")
    if stats:
        lines.append(f"- examples: {stats.get('examples')} {json.dumps(stats.get('tasks', {}), ensure_ascii=False)}")
        if "heldout_records" in stats:
            lines.append(f"- held-out parallel records (never trained on): {stats['heldout_records']}")
    lines += ["", "## Training", ""]
    fields = ["method", "learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "max_length", "packing"]
    if t.method != "full":
        fields[1:1] = ["lora_r", "lora_alpha", "lora_dropout"]
    lines.append("- " + ", ".join(f"{k}={getattr(t, k)}" for k in fields))
    if summary:
        lines.append(
            f"- {summary.get('steps')} optimizer steps, loss {_fmt(summary.get('first_loss'))} -> "
            f"{_fmt(summary.get('last_loss'))}, {summary.get('tokens_seen')} tokens seen, {summary.get('seconds')} s"
        )
    lines.append(f"- base model: `{base_ref}`; seed {cfg.seed}")
    lines += ["", "## How it was made", "", "```sh", cmd, "```", ""]
    lines.append("The run's resolved `config.yaml` holds every setting; re-running the command resumes or reuses it.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- writing


def build_card(
    cfg: RunConfig,
    run_dir: Path,
    model_dir: Path,
    metrics: dict[str, Any] | None,
    cmd: str | None = None,
    repo_id: str | None = None,
) -> Any:
    """The :class:`huggingface_hub.ModelCard` for ``model_dir`` (an adapter or a full model) of a run.

    Args:
        cfg: the run config.
        run_dir: the run directory (data stats, training summary).
        model_dir: ``train/final`` or ``train/merged``.
        metrics: ``eval/metrics.json`` content, or None before evaluation.
        cmd: the command that trained it.
        repo_id: the Hub repository it is pushed to (used in the code sample); None = the local path.
    """
    from huggingface_hub import ModelCard, ModelCardData

    is_adapter = (model_dir / "adapter_config.json").is_file()
    marker = _read_json(model_dir / "bayling_base_model.json")
    summary = _read_json(RunLayout(run_dir).train_summary)
    resolved = marker.get("base_model") or summary.get("base_model")
    base_id = base_model_id(cfg.model.name_or_path, resolved)
    language = iso_languages(expand_languages(cfg.data.languages + cfg.data.instruction_languages))
    tags = ["bayling", "translation", "multilingual", "instruction-tuning", "trl", "sft", cfg.train.method]
    if base_id and is_adapter:
        tags.append(f"base_model:adapter:{base_id}")
    elif base_id:
        tags.append(f"base_model:finetune:{base_id}")
    data = ModelCardData(
        base_model=base_id,
        library_name="peft" if is_adapter else "transformers",
        language=language,
        pipeline_tag="text-generation",
        tags=tags,
        datasets=_hub_datasets(cfg) or None,
        model_name=cfg.name,
        eval_results=eval_results(metrics, cfg) if metrics else None,
        **base_license(base_id, resolved),
    )
    base_ref = base_id or str(cfg.model.name_or_path)
    text = _body(cfg, run_dir, model_dir, base_id, base_ref, metrics, cmd or process_command(), repo_id)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text}")


def card_dirs(run_dir: Path) -> list[Path]:
    """The model directories of a run that get a card: ``train/final`` and ``train/merged`` when present."""
    layout = RunLayout(run_dir)
    return [d for d in (layout.train_final, layout.train_merged) if d.is_dir()]


def write_cards(
    cfg: RunConfig,
    run_dir: str | Path,
    metrics: dict[str, Any] | None = None,
    cmd: str | None = None,
    repo_id: str | None = None,
) -> list[Path]:
    """(Re)write ``README.md`` in every model directory of ``run_dir``.

    Args:
        cfg: the run config (``RunConfig``).
        run_dir: the run directory.
        metrics: the eval stage's ``metrics.json`` content; None = not evaluated (no ``model-index``).
        cmd: the command that trained the model; default: the recorded one, else the current command.
        repo_id: the Hub repository the model is pushed to (code sample); None = local paths.

    Returns:
        The card files written.
    """
    from bayling.io import write_text

    run_dir = Path(run_dir)
    cmd = cmd or _read_json(RunLayout(run_dir).stage_marker("train")).get("command") or process_command()
    out = []
    for d in card_dirs(run_dir):
        card = build_card(cfg, run_dir, d, metrics, cmd, repo_id)
        write_text(d / "README.md", str(card))
        out.append(d / "README.md")
    return out
