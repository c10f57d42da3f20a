"""``bayling run``: data -> train -> eval -> (ablation) -> chat as cached stages in one run directory.

:class:`RunConfig` composes the stages' config sections. Each stage is one call of its package's entry point
(:func:`bayling.data.build`, :func:`bayling.train.train`, :func:`bayling.evaluate.evaluate`, then a chat turn
through :func:`bayling.engines.load_run`), with its paths from :class:`~bayling.layout.RunLayout`; each returns
what the next needs and what is printed, so nothing just written is read back. A finished stage leaves a
``_stage.json`` marker holding a fingerprint of everything it depends on (its config section, the model, the
seed and the upstream fingerprints; :mod:`bayling.digest`, :mod:`bayling.resume`). Re-running skips stages
whose fingerprint is unchanged, so an interrupted run resumes at the first unfinished stage and changing
``eval.*`` never retrains. The resolved config, the seed and a log are written beside the stages. The
``ablation`` stage, run only when listed, runs the run again with a few keys changed per arm, on the same split,
and compares them (:mod:`bayling.ablation`).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bayling.ablation import AblationConfig
from bayling.card import process_command
from bayling.config import Seed, save_config, stage_seed, to_dict
from bayling.data.config import DataConfig
from bayling.digest import fingerprint
from bayling.errors import ConfigError
from bayling.evaluate.config import EvalConfig
from bayling.io import write_json
from bayling.layout import RunLayout
from bayling.models import ModelConfig
from bayling.progress import console
from bayling.resume import mark, marked
from bayling.serve.config import ChatConfig, ServeConfig
from bayling.train.config import TrainConfig

log = logging.getLogger("bayling")

STAGES = ("data", "train", "eval", "ablation", "chat")


@dataclass
class RunConfig:
    """One end-to-end run: data -> train -> eval -> chat, each stage cached in ``run_dir``."""

    name: str = "run"
    run_dir: str = "runs/{name}"
    """Where every stage writes; ``{name}`` is replaced by ``name``."""
    seed: Seed = 0
    """The run's one seed: data sampling and split, training, few-shot demonstrations and generation
    (``data.seed`` / ``eval.seed`` may repeat it, never differ)."""
    stages: list[str] = field(default_factory=lambda: ["data", "train", "eval", "chat"])
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    """How ``bayling serve RUN_DIR`` serves this run's model (``--config`` and overrides still win)."""
    ablation: AblationConfig = field(default_factory=AblationConfig)
    """Arms compared by the ``ablation`` stage (run when ``stages`` lists it)."""

    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir.replace("{name}", self.name))

    def eval_section(self) -> EvalConfig:
        """The ``eval`` section as the stage runs it: with the run's seed."""
        return replace(self.eval, seed=stage_seed(self.seed, self.eval.seed, "eval.seed"))


def stage_fingerprints(cfg: RunConfig) -> dict[str, str]:
    """What each stage's output depends on, hashed; a changed upstream changes every later stage."""
    model = to_dict(cfg.model)
    fp: dict[str, str] = {}
    fp["data"] = fingerprint(cfg.data, name="data", seed=cfg.seed)
    fp["train"] = fingerprint(cfg.train, name="train", model=model, data=fp["data"], seed=cfg.seed)
    fp["eval"] = fingerprint(cfg.eval_section(), name="eval", model=model, train=fp["train"])
    fp["ablation"] = fingerprint(cfg.ablation, name="ablation", eval=fp["eval"], data=fp["data"])
    fp["chat"] = fingerprint(cfg.chat, name="chat", model=model, train=fp["train"])
    return fp


def _setup_logging(run: RunLayout) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    target = str(run.log.resolve())
    if not any(getattr(h, "baseFilename", None) == target for h in root.handlers):
        fh = logging.FileHandler(target, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


def _done(run_dir: Path, stage: str, fp: str) -> bool:
    return marked(RunLayout(run_dir).stage_marker(stage), fp) is not None


def trained_text(cfg: RunConfig) -> str | None:
    """How the eval stage would score text the run trains on, or None.

    The data stage trains on every record of ``data.source`` except its held-out and few-shot parts; only
    ``eval.testset: heldout`` is disjoint from it. A test set that is the training source itself is not.
    """
    if "train" not in cfg.stages:
        return None
    d, e = cfg.data, cfg.eval
    flores_devtest = d.source == "flores200" and d.flores_split == "devtest"
    if flores_devtest and e.testset == "flores200":
        return "data.source=flores200 trains on FLORES-200 devtest, the sentences eval.testset=flores200 scores"
    if flores_devtest and "refinement" in e.interactive.tasks and e.testset != "heldout":
        return "eval.interactive dialogues read every FLORES-200 devtest record, which data.source=flores200 trains on"
    test, source = Path(e.testset).expanduser(), Path(d.source).expanduser()
    if e.testset != "heldout" and test.exists() and test.resolve() == source.resolve():
        return f"eval.testset={e.testset} is data.source, the text the run trains on"
    return None


def _eval_languages(section: EvalConfig) -> list[tuple[str, str]]:
    """``(config key, FLORES code)`` of every language the eval stage reads from its test set."""
    from bayling.evaluate.stage import eval_directions
    from bayling.languages import get_language

    key = "eval.translation.languages" if section.translation.languages else "eval.translation.directions"
    out = [(key, c) for d in eval_directions(section) for c in d]
    out += [("eval.perplexity.languages", get_language(c).code) for c in section.perplexity.languages]
    it = section.interactive
    if "refinement" in it.tasks:
        out += [("eval.interactive.directions", c) for d in it.directions for c in d.split("-")]
        if "third_language" in it.turns:
            out.append(("eval.interactive.third_language", get_language(it.third_language).code))
    return [(k, get_language(c).code) for k, c in out]


def check_eval_needs(cfg: RunConfig, section: EvalConfig) -> None:
    """What the eval stage will read, checked before the data stage: with ``eval.testset: heldout`` every language
    it scores is one of ``data.languages`` (the held-out records have no other), and the benchmarks' files are
    there for their languages.

    Raises:
        ConfigError: ``eval.perplexity.languages: zho_Hans is not in data.languages ...``.
    """
    from bayling.evaluate.benchmarks import load_benchmark
    from bayling.languages import expand_languages

    if section.testset == "heldout" and "data" in cfg.stages:
        have = set(expand_languages(cfg.data.languages))
        for key, code in _eval_languages(section):
            if code not in have:
                raise ConfigError(
                    f"{key}: {code} is not in data.languages ({', '.join(sorted(have))}), so the held-out test set "
                    f"has no {code} text; add it to data.languages or leave it out of {key}"
                )
    bc = section.benchmarks
    for name in bc.tasks:  # reads the items' files only (no model): a missing file or language fails here
        load_benchmark(name, section.data_dir, bc.languages or None, bc.limit)


def check_testset(section: EvalConfig, heldout: Path) -> None:
    """After the data stage, before training: the test set the eval stage reads has text for every direction
    and perplexity language (``heldout.jsonl`` as built, or the named test set's files).

    Raises:
        DataError: ``eval: no eng_Latn-zho_Hans sentences in test set 'heldout'`` and the like.
    """
    from bayling.errors import DataError
    from bayling.evaluate.perplexity import texts_by_language
    from bayling.evaluate.stage import full_testset

    for b in full_testset(section, heldout):
        if not b.sources:
            raise DataError(f"eval: no {b.src}-{b.tgt} sentences in test set {section.testset!r}")
    texts_by_language(section, heldout)


def preflight(cfg: RunConfig, plan: list[str]) -> None:
    """Fail before any work on what can be checked cheaply: languages, the ``eval`` section (when the eval stage
    is planned) and what it will read, evaluation on trained text, the model reference."""
    from bayling.evaluate.config import validate
    from bayling.languages import expand_languages, get_language
    from bayling.models import check_model

    stage_seed(cfg.seed, cfg.data.seed, "data.seed")
    section = cfg.eval_section()
    expand_languages(cfg.data.languages)  # also expands the sets `flores101` / `all`
    for code in cfg.data.pivot_languages + cfg.data.instruction_languages:
        get_language(code)
    if "eval" in plan:
        validate(section)
        check_eval_needs(cfg, section)
        overlap = trained_text(cfg)
        if overlap and not section.allow_trained_text:
            raise ConfigError(
                f"evaluation on trained text: {overlap}; use eval.testset=heldout (or a test set disjoint from "
                "data.source), or set eval.allow_trained_text=true to score anyway (recorded in metrics.json)"
            )
    if "ablation" in plan:
        from bayling.ablation import check

        for name, arm in zip(cfg.ablation.arms, check(cfg), strict=True):  # every arm's config, before any work
            try:
                check_eval_needs(arm, arm.eval_section())
            except ConfigError as e:
                raise ConfigError(f"ablation.arms.{name}: {e}") from None
    if any(s in plan for s in ("train", "eval", "ablation", "chat")):
        check_model(cfg.model.name_or_path, cfg.model.gguf_file)


def run(cfg: RunConfig, stages: list[str] | None = None, force: bool = False, command: str | None = None) -> Path:
    """Run ``stages`` (default: ``cfg.stages``), first completing any earlier stage they need.

    Args:
        cfg: the run config.
        stages: stage names to run; upstream stages from ``cfg.stages`` run too when not yet done.
        force: re-run the requested stages even when their outputs are current.
        command: the command line that started the run (the CLI's), recorded by the train stage for the model
            card; default: this process's arguments.

    Returns:
        The run directory.
    """
    wanted = stages or cfg.stages
    for s in wanted + cfg.stages:
        if s not in STAGES:
            raise ConfigError(f"unknown stage {s!r}; stages are: {', '.join(STAGES)}")
    last = max(STAGES.index(s) for s in wanted)
    plan = [s for s in STAGES if (s in cfg.stages and STAGES.index(s) <= last) or s in wanted]
    preflight(cfg, plan)
    run_dir = cfg.resolved_run_dir()
    run = RunLayout(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run.config)
    _setup_logging(run)
    fps = stage_fingerprints(cfg)
    command = command or process_command()
    funcs = dict(
        STAGE_FUNCS,
        train=functools.partial(_stage_train, command=command),
        ablation=functools.partial(_stage_ablation, command=command),
    )
    console.print(f"[bold]bayling run[/bold] {cfg.name} -> {run_dir}  (stages: {', '.join(plan)}, seed {cfg.seed})")
    checked = False
    for stage in plan:
        if _done(run_dir, stage, fps[stage]) and not (force and stage in wanted):
            console.print(f"[dim]{stage}: up to date (cached)[/dim]")
            continue
        console.rule(f"[bold]{stage}")
        t0 = time.time()
        if (
            stage != "data"
            and not checked
            and "eval" in plan
            and "data" in plan
            and not _done(run_dir, "eval", fps["eval"])
        ):
            check_testset(cfg.eval_section(), run.heldout)  # the data stage's output, before any training
            checked = True
        info = funcs[stage](cfg, run)
        elapsed = round(time.time() - t0, 1)
        log.info("stage %s finished in %.1fs", stage, elapsed)
        mark(run.stage_marker(stage), fps[stage], seconds=elapsed, **info)
        console.print(f"[green]{stage}: done in {elapsed:.0f}s[/green]")
    return run_dir


# ----------------------------------------------------------------------------- stages


def _stage_data(cfg: RunConfig, run: RunLayout) -> dict[str, Any]:
    from bayling.data import build

    data = build(cfg.data, run.data_dir, seed=cfg.seed)
    s = data.stats
    console.print(f"data: {s['examples']} examples {s['tasks']}, {s['heldout_records']} held out")
    return {"examples": data.examples}


def _stage_train(cfg: RunConfig, run: RunLayout, command: str) -> dict[str, Any]:
    from bayling.card import write_cards
    from bayling.train import train
    from bayling.train.distributed import is_main_process
    from bayling.train.tracking import run_recorder

    # Called although the stage is current only under --force: then retrain from scratch instead of
    # reusing the finished sub-stages (cpt/sft/preference) that train() would otherwise skip.
    forced = _done(run.run_dir, "train", stage_fingerprints(cfg)["train"])
    result = train(
        cfg.train,
        cfg.model,
        run.train_jsonl,
        run.train_dir,
        seed=cfg.seed,
        callbacks=[run_recorder(run.trackers)],  # for the eval stage's scores
        fresh=forced,
    )
    if not is_main_process():  # under accelerate/torchrun: ranks > 0 leave once the distributed work is done
        raise SystemExit(0)
    write_cards(cfg, run.run_dir, metrics=None, cmd=command)  # rewritten with the scores by the eval stage
    s = result.summary
    console.print(
        f"train: {s['steps']} steps, loss {_num(s.get('first_loss'))} -> {_num(s.get('last_loss'))}, {s['seconds']}s"
    )
    return {"output": str(result.final), "command": command}


def _num(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, int | float) else "n/a"


def _adapter(cfg: RunConfig, run: RunLayout) -> Path | None:
    return run.train_final if "train" in cfg.stages and run.train_final.is_dir() else None


def _eval_adapter(cfg: RunConfig, run: RunLayout, engine: str) -> Path | None:
    """What the tuned system loads: ``train/final``, or with ``eval.engine=llamacpp`` that LoRA as a GGUF
    adapter, exported once into ``train/adapter.gguf`` when the train stage did not export it (llama.cpp
    applies it on top of the embedded Q4_K_M GGUF, as ``bayling serve --engine llamacpp`` does)."""
    adapter = _adapter(cfg, run)
    if adapter is None or engine != "llamacpp" or (adapter / "config.json").is_file():
        return adapter  # a full fine-tune: the factory explains that llama.cpp cannot load it
    from bayling.engines.factory import exported_adapter_gguf

    found = exported_adapter_gguf(run)
    if found is not None:
        return found
    from bayling.train.export import lora_to_gguf

    console.print("eval: exporting the LoRA adapter to GGUF for the llama.cpp engine (train/adapter.gguf)")
    return lora_to_gguf(adapter, run.train_dir / "adapter.gguf")


def _stage_eval(cfg: RunConfig, run: RunLayout) -> dict[str, Any]:
    from bayling.evaluate import evaluate
    from bayling.evaluate.stage import pipeline_systems

    section = cfg.eval_section()
    adapter = _eval_adapter(cfg, run, section.engine)
    systems = pipeline_systems(cfg.model, adapter, section.compare_base, section.base_prompts)
    sft = run.train_dir / "sft" / "output"  # written apart from train/final only when a later stage followed SFT
    if section.compare_stages and adapter is not None and section.engine != "llamacpp" and sft.is_dir():
        systems["tuned-sft"] = replace(systems["tuned"], name="tuned-sft", adapter=str(sft))
    result = evaluate(section, cfg.model, systems, run.eval_dir, heldout_file=run.heldout, name=cfg.name)
    overlap = trained_text(cfg)
    if overlap:  # allowed by eval.allow_trained_text (preflight refused it otherwise): say so in the results
        result.metrics["train_overlap"] = overlap
        write_json(run.metrics, result.metrics)
    if adapter is not None:  # the run's own model: card with these scores, same tracker run
        from bayling.card import write_cards
        from bayling.train.tracking import log_eval_metrics

        write_cards(cfg, run.run_dir, metrics=result.metrics)
        log_eval_metrics(run.train_dir, result.metrics)
    info = {"metrics": str(run.metrics)}
    if cfg.eval.report:
        info["report"] = str(run.report)
    return info


def _stage_ablation(cfg: RunConfig, layout: RunLayout, command: str) -> dict[str, Any]:
    from bayling.ablation import run_ablation

    return run_ablation(cfg, layout, run, stage_fingerprints, command)


def _stage_chat(cfg: RunConfig, run: RunLayout) -> dict[str, Any]:
    from bayling.engines import GenerationParams, load_run

    engine = load_run(run.run_dir)
    conv = [{"role": "user", "content": cfg.chat.prompt}]
    answer = engine.generate([conv], GenerationParams(max_new_tokens=cfg.chat.max_new_tokens))[0]
    console.print(f"[bold]user:[/bold] {cfg.chat.prompt}\n[bold]bayling:[/bold] {answer}")
    write_json(run.chat_json, {"messages": conv + [{"role": "assistant", "content": answer}]})
    return {}


STAGE_FUNCS = {"data": _stage_data, "train": _stage_train, "eval": _stage_eval, "chat": _stage_chat}


def load_data_config(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), out: str | Path | None = None
) -> tuple[DataConfig, Path, int]:
    """The ``data`` section, output directory and seed of a data-only preset or of a run config.

    A file whose top-level keys are all among ``name``, ``out_dir``, ``seed``, ``data`` is a
    :class:`~bayling.data.config.DataBuildConfig` (written to its ``out_dir``); anything else is a
    :class:`RunConfig` (written to ``RUN_DIR/data``). ``out`` replaces either directory. The resolved config
    is saved there as ``config.yaml`` (``bayling data build`` / ``bayling data teacher``).
    """
    from bayling.config import load_config, read_yaml
    from bayling.data.config import DataBuildConfig

    cfg: DataBuildConfig | RunConfig
    if set(read_yaml(path)) <= {"name", "out_dir", "seed", "data"}:
        cfg = load_config(DataBuildConfig, path, overrides)
        target = Path(out or cfg.resolved_out_dir())
    else:
        cfg = load_config(RunConfig, path, overrides)
        target = Path(out) if out else RunLayout(cfg.resolved_run_dir()).data_dir
    target.mkdir(parents=True, exist_ok=True)
    save_config(cfg, target / "config.yaml")
    return cfg.data, target, stage_seed(cfg.seed, cfg.data.seed, "data.seed")


def current_metrics(cfg: RunConfig, run_dir: Path) -> dict[str, Any] | None:
    """``eval/metrics.json`` when the eval stage finished for the run's current config and model, else None."""
    layout = RunLayout(run_dir)
    if marked(layout.stage_marker("eval"), stage_fingerprints(cfg)["eval"]) is None or not layout.metrics.is_file():
        return None
    try:
        return json.loads(layout.metrics.read_text(encoding="utf-8")) or None
    except ValueError:  # damaged: as if not evaluated
        return None
