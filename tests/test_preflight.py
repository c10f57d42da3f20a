"""What a run can know before training is checked before training: the languages its evaluation reads, the
benchmarks' files, and whether it would score text it trains on (refused unless allowed, then recorded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bayling.config import load_config
from bayling.errors import BaylingError, ConfigError
from bayling.pipeline import RunConfig, preflight

REPO = Path(__file__).resolve().parents[1]
FLORES = REPO / "configs" / "experiments" / "flores_alignment.yaml"
PLAN = ["data", "train", "eval"]


def test_two_flores_languages_fail_before_training_on_the_perplexity_languages():
    """The issue's case: restricted to eng/jav, the preset built data and trained 4 minutes before it stopped on
    ``eval.perplexity.languages: no zho_Hans text in test set 'heldout'``."""
    cfg = load_config(
        RunConfig, FLORES, ["data.languages=[eng_Latn,jav_Latn]", "eval.translation.languages=[jav_Latn]"]
    )
    with pytest.raises(ConfigError) as e:
        preflight(cfg, PLAN)
    assert str(e.value).startswith(
        "eval.perplexity.languages: zho_Hans is not in data.languages (eng_Latn, jav_Latn), so the held-out test set "
        "has no zho_Hans text"
    )
    preflight(cfg, ["data"])  # a run without its eval stage does not need them


@pytest.mark.parametrize(
    ("overrides", "key", "code"),
    [
        (["eval.translation.languages=[deu_Latn]"], "eval.translation.languages", "deu_Latn"),
        (["eval.translation.languages=[]", "eval.translation.directions=[eng_Latn-fra_Latn]"],
         "eval.translation.directions", "fra_Latn"),
        (["eval.translation.languages=[jav_Latn]", "eval.perplexity.languages=[]", "eval.interactive.tasks=[refinement]",
          "eval.interactive.directions=[eng_Latn-jav_Latn]"], "eval.interactive.third_language", "deu_Latn"),
    ],
)  # fmt: skip
def test_every_language_the_held_out_set_lacks_fails_in_preflight(overrides, key, code):
    cfg = load_config(RunConfig, FLORES, ["data.languages=[eng_Latn,jav_Latn]", *overrides])
    with pytest.raises(ConfigError, match=f"^{key}: {code} is not in data.languages"):
        preflight(cfg, PLAN)


def test_benchmark_files_are_read_in_preflight(tmp_path):
    cfg = load_config(
        RunConfig, REPO / "configs" / "quickstart.yaml", ["eval.benchmarks.tasks=[xcopa]", f"eval.data_dir={tmp_path}"]
    )
    with pytest.raises(BaylingError, match="xcopa"):
        preflight(cfg, PLAN)


@pytest.mark.parametrize(
    ("overrides", "overlap"),
    [
        (["eval.testset=flores200"], "data.source=flores200 trains on FLORES-200 devtest"),
        (["eval.testset=wmt22", "eval.interactive.tasks=[refinement]"],
         "eval.interactive dialogues read every FLORES-200 devtest record"),
    ],
)  # fmt: skip
def test_evaluation_on_trained_text_is_refused_unless_allowed(overrides, overlap):
    cfg = load_config(RunConfig, FLORES, overrides)
    with pytest.raises(ConfigError) as e:
        preflight(cfg, PLAN)
    message = str(e.value)
    assert message.startswith(f"evaluation on trained text: {overlap}") and "eval.allow_trained_text=true" in message
    assert "\n" not in message
    preflight(load_config(RunConfig, FLORES, [*overrides, "eval.allow_trained_text=true"]), PLAN)
    preflight(load_config(RunConfig, FLORES, [*overrides, "data.flores_split=dev"]), PLAN)  # disjoint split
    preflight(cfg, ["data", "train"])


def _parallel_tsv(path: Path, n: int = 40) -> Path:
    rows = ["eng_Latn\tdeu_Latn"] + [f"The house number {i} is red.\tDas Haus Nummer {i} ist rot." for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_an_allowed_overlap_is_recorded_in_metrics_json(tiny_llama, tiny_data, tmp_path):
    from bayling.pipeline import run

    src = str(_parallel_tsv(tmp_path / "par.tsv"))
    overrides = [
        f"run_dir={tmp_path / 'run'}",
        f"model.name_or_path={tiny_llama}",
        "model.dtype=float32",
        f"data.source={src}",
        "data.languages=[eng_Latn,deu_Latn]",
        "data.pivot_languages=[eng_Latn]",
        "data.split_by=record",
        *tiny_data(heldout=4, interactive=8, crosslingual=0, general=2),
        "train.max_steps=1",
        "train.batch_size=2",
        f"eval.testset={src}",
        "eval.translation.directions=[eng_Latn-deu_Latn]",
        "eval.translation.off_target=false",
        "eval.base_prompts=[chat]",
        "eval.max_sentences=2",
        "eval.max_new_tokens=4",
        "eval.report=false",
    ]
    cfg = load_config(RunConfig, REPO / "configs" / "quickstart.yaml", overrides)
    with pytest.raises(ConfigError, match=f"evaluation on trained text: eval.testset={src} is data.source"):
        run(cfg, ["eval"])
    cfg = load_config(RunConfig, REPO / "configs" / "quickstart.yaml", [*overrides, "eval.allow_trained_text=true"])
    run_dir = run(cfg, ["eval"])
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train_overlap"] == f"eval.testset={src} is data.source, the text the run trains on"


def test_an_empty_direction_of_the_built_test_set_fails_before_training(tiny_llama, tiny_data, tmp_path):
    """Checked right after the data stage: the held-out records carry no text for a direction -> no training."""
    from bayling.errors import DataError
    from bayling.pipeline import run

    src = tmp_path / "par.jsonl"
    rows = [{"id": f"r{i}", "eng_Latn": f"House {i}.", "deu_Latn": f"Haus {i}."} for i in range(30)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = load_config(
        RunConfig,
        REPO / "configs" / "quickstart.yaml",
        [
            f"run_dir={tmp_path / 'run'}",
            f"model.name_or_path={tiny_llama}",
            f"data.source={src}",
            "data.languages=[eng_Latn,deu_Latn]",
            "data.pivot_languages=[eng_Latn]",
            "data.split_by=record",
            "data.filters.lid=false",
            *tiny_data(heldout=4, interactive=8, crosslingual=0, general=2),
            "eval.translation.directions=[eng_Latn-deu_Latn]",
        ],
    )
    (tmp_path / "run" / "data").mkdir(parents=True)
    preflight(cfg, PLAN)
    run(cfg, ["data"])
    (tmp_path / "run" / "data" / "heldout.jsonl").write_text("")  # as a build whose held-out part came out empty
    with pytest.raises(DataError, match=r"^eval: no eng_Latn-deu_Latn sentences in test set 'heldout'$"):
        run(cfg, ["eval"])
    assert not (tmp_path / "run" / "train" / "final").exists()
