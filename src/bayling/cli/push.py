"""``bayling push RUN_DIR ORG/NAME``: upload a run's adapter (or merged model) with its model card to the Hub.

The card (``README.md``) is rewritten first from the run's config, data statistics, training summary and,
when the eval stage is current, ``eval/metrics.json``, with the code sample pointing at the repository.
Uploads go through ``huggingface_hub`` (``HF_ENDPOINT``, ``HF_TOKEN`` or ``hf auth login``); the repository is
created when missing. Local bookkeeping files (``training_args.bin``, the base-model path marker) stay behind,
and an adapter's ``base_model_name_or_path`` (a local cache path) is replaced by the base model's Hub id.
"""

from __future__ import annotations

import argparse

EXCLUDED = ["training_args.bin", "bayling_base_model.json", "*.journal.jsonl"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "push",
        help="upload a run's adapter (or merged model) and its model card to the Hugging Face Hub",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("run_dir", help="a run directory with train/final (e.g. runs/quickstart)")
    p.add_argument("repo_id", help="Hub repository, ORG/NAME (created if missing)")
    p.add_argument("--merged", action="store_true", help="push train/merged (train.export: [merged]) instead")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    p.add_argument("-m", "--message", default=None, help="commit message")
    p.set_defaults(func=_push)


def _push(args: argparse.Namespace) -> int:
    from bayling.errors import BaylingError
    from bayling.layout import RunLayout

    layout = RunLayout(args.run_dir)
    run_dir = layout.run_dir
    folder = layout.train_merged if args.merged else layout.train_final
    if not layout.config.is_file():
        raise BaylingError(f"{run_dir}: not a run directory (no config.yaml); give the RUN_DIR of `bayling run`")
    if not folder.is_dir():
        hint = "export it with train.export=[merged]" if args.merged else "run `bayling train` first"
        raise BaylingError(f"{folder} does not exist; {hint}")
    url = push_run(
        run_dir, args.repo_id, merged=args.merged, private=args.private, revision=args.revision, message=args.message
    )
    print(url)
    return 0


def _operations(folder, cfg) -> list:
    """One upload per file of ``folder`` except local bookkeeping; an adapter's base becomes its Hub id.

    PEFT records the base as the local directory it was loaded from (a cache snapshot); on the Hub,
    ``AutoPeftModelForCausalLM.from_pretrained(REPO)`` must find the base by its Hub id instead.
    """
    import fnmatch
    import json

    from huggingface_hub import CommitOperationAdd

    from bayling.card import base_model_id
    from bayling.validate import read_json_object

    marker = folder / "bayling_base_model.json"
    resolved = read_json_object(marker).get("base_model") if marker.is_file() else None
    base_id = base_model_id(cfg.model.name_or_path, resolved)
    ops = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if not p.is_file() or any(fnmatch.fnmatch(rel, pat) for pat in EXCLUDED):
            continue
        content: str | bytes = str(p)
        if rel == "adapter_config.json" and base_id:
            conf = read_json_object(p)
            conf["base_model_name_or_path"] = base_id
            content = (json.dumps(conf, indent=2, sort_keys=True) + "\n").encode()
        ops.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=content))
    return ops


def push_run(
    run_dir,
    repo_id: str,
    merged: bool = False,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
) -> str:
    """Rewrite the card for ``repo_id`` and upload the model directory; returns the commit URL."""
    from huggingface_hub import get_token

    from bayling import hub
    from bayling.card import write_cards
    from bayling.config import load_config
    from bayling.errors import BaylingError
    from bayling.layout import RunLayout
    from bayling.models import HUB_ID, check_model_files
    from bayling.pipeline import RunConfig, current_metrics
    from bayling.progress import console
    from bayling.validate import read_json_object

    if not HUB_ID.match(repo_id) or "@" in repo_id:
        raise BaylingError(f"repository id {repo_id!r}: expected ORG/NAME")
    layout = RunLayout(run_dir)
    cfg = load_config(RunConfig, layout.config)
    folder = layout.train_merged if merged else layout.train_final
    check_model_files(folder)  # the local files first: a damaged one is named before any Hub request
    for f in (layout.train_summary, layout.data_stats):
        if f.is_file():
            read_json_object(f)
    if hub.is_offline():
        raise BaylingError("bayling is offline (--offline, BAYLING_OFFLINE or HF_HUB_OFFLINE): pushing needs the Hub")
    if get_token() is None:
        raise BaylingError("pushing needs a Hugging Face token with write access: `hf auth login` or set HF_TOKEN")
    metrics = current_metrics(cfg, layout.run_dir)
    write_cards(cfg, layout.run_dir, metrics=metrics, repo_id=repo_id)
    operations = _operations(folder, cfg)
    api = hub.api()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        with hub.download_progress():
            info = api.create_commit(
                repo_id,
                operations=operations,
                revision=revision,
                commit_message=message or f"bayling: {cfg.name} ({'merged model' if merged else 'adapter'})",
            )
    except Exception as e:  # noqa: BLE001
        err = hub.hub_error("model", repo_id, e, BaylingError)
        if err is None:
            raise
        raise err from None
    scores = "with its evaluation" if metrics else "without evaluation scores (eval stage not run or not current)"
    console.print(f"pushed {folder} to {hub.repo_url('model', repo_id)} {scores}")
    return str(info.commit_url)
