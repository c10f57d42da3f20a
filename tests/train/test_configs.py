"""Every shipped training preset and accelerate config loads; bad values fail with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bayling.config import load_config
from bayling.errors import ConfigError
from bayling.pipeline import RunConfig

REPO = Path(__file__).resolve().parents[2]
TRAIN_PRESETS = sorted((REPO / "configs" / "train").glob("*.yaml"))
ACCELERATE = sorted((REPO / "configs" / "accelerate").glob("*.yaml"))


def test_presets_exist():
    assert len(TRAIN_PRESETS) >= 5 and len(ACCELERATE) >= 6


@pytest.mark.parametrize("path", TRAIN_PRESETS, ids=lambda p: p.name)
def test_train_preset_loads(path):
    cfg = load_config(RunConfig, path)
    assert "train" in cfg.stages
    assert path.read_text(encoding="utf-8").lstrip().startswith("#"), "each preset opens with how to run it"


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_config_is_valid(path):
    from accelerate.commands.config.config_args import ClusterConfig

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg = ClusterConfig.from_yaml_file(str(path))  # accelerate's own loader: unknown keys raise
    assert cfg.num_processes >= 1 and cfg.num_machines >= 1
    if data["distributed_type"] == "DEEPSPEED":
        assert data["deepspeed_config"]["zero_stage"] in (2, 3)
    if data["distributed_type"] == "FSDP":
        assert data["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # train/final is a plain model


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.method=adapter", "train.method must be one of lora, full, qlora"),
        ("train.preference.method=ppo", "train.preference.method must be none, dpo or cpo"),
        ("train.export=[onnx]", "train.export: unknown"),
        ("train.packing_strategy=greedy", "train.packing_strategy"),
        ("train.cpt.lr=1", "unknown config key 'train.cpt.lr'"),
    ],
)
def test_bad_train_values_are_reported(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(RunConfig, REPO / "configs" / "quickstart.yaml", [override])


def test_qlora_on_cpu_is_a_clear_error(tiny_llama):
    from bayling.train.model import load_for_training

    with pytest.raises(ConfigError, match="qlora needs a CUDA device"):
        load_for_training(tiny_llama, "qlora", True, "cpu")


# ----------------------------------------------------------------------------- precision x launcher


def _device_for(accelerate_preset: Path, cfg: RunConfig) -> str:
    """The device a run of ``cfg`` gets under ``accelerate_preset``: the GPU presets are for CUDA machines."""
    if cfg.model.device != "auto":
        return cfg.model.device
    return "cpu" if accelerate_preset.name == "ddp_cpu.yaml" else "cuda"


def _stage_args(cfg: RunConfig, tmp_path: Path, device: str) -> dict:
    """Builders of every stage's real ``TrainingArguments`` subclass (SFT, plus CPT / preference when enabled).

    Called one stage at a time, as a run does: each stage's arguments reset accelerate's process state.
    """
    from bayling.train.args import sft_args
    from bayling.train.cpt import cpt_args
    from bayling.train.preference import preference_args

    stages = {"sft": lambda: sft_args(cfg.train, tmp_path / "sft", device)}
    if cfg.train.cpt.data:
        stages["cpt"] = lambda: cpt_args(cfg.train, tmp_path / "cpt", device, 0)
    if cfg.train.preference.method != "none":
        stages["preference"] = lambda: preference_args(cfg.train, tmp_path / "preference", device, 0)
    return stages


@pytest.mark.parametrize("train_preset", TRAIN_PRESETS, ids=lambda p: p.stem)
@pytest.mark.parametrize("accelerate_preset", ACCELERATE, ids=lambda p: p.stem)
def test_precision_agrees_and_deepspeed_config_finalises(
    accelerate_preset, train_preset, launched, monkeypatch, tmp_path
):
    """Every accelerate preset x train preset x stage: TrainingArguments, the accelerator and DeepSpeed agree.

    The arguments are the real ``SFTConfig`` / ``CPOConfig`` built under the environment ``accelerate launch``
    gives its processes; DeepSpeed's config then goes through exactly what ``Trainer`` runs before the engine
    starts (``Accelerator`` + ``propagate_args_to_deepspeed`` + ``trainer_config_finalize``), which raised
    "ds bf16.enabled=True vs hf bf16|bf16_full_eval=False" for every LoRA/QLoRA preset before. Only the
    DeepSpeed engine, the GPU kernels and the bitsandbytes 4-bit load (QLoRA) are left for a GPU machine.
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import FullyShardedDataParallelPlugin, GradientAccumulationPlugin
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.integrations.deepspeed import propagate_args_to_deepspeed

    import bayling.train.args as args_module

    env = launched(accelerate_preset)
    cfg = load_config(RunConfig, train_preset)
    device = _device_for(accelerate_preset, cfg)
    if device.startswith("cuda"):
        # the one hardware probe: TrainingArguments refuses bf16 unless it sees an Ampere+ GPU
        monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda *a, **k: True)
    if env.get("ACCELERATE_USE_FSDP") == "true":
        # Without a GPU accelerate reports MULTI_CPU/NO, which check_launch rightly refuses (tested below);
        # on the GPU machine this preset is for it reports MULTI_GPU and upgrades it to FSDP.
        monkeypatch.setattr(args_module, "check_launch", lambda args: args)
        monkeypatch.setattr("bayling.train.preference.check_launch", lambda args: args)
    autocast = cfg.train.bf16 and device.startswith("cuda")
    tiny = LlamaForCausalLM(
        LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    )
    stages = _stage_args(cfg, tmp_path, device)
    assert "sft" in stages and ("cpt" in stages) == bool(cfg.train.cpt.data)
    for stage, build in stages.items():
        args = build()
        where = f"{accelerate_preset.name} x {train_preset.name} ({stage})"
        if env.get("ACCELERATE_USE_DEEPSPEED") == "true":
            accelerator = Accelerator(  # as Trainer.create_accelerator_and_postprocess builds it
                mixed_precision=args.mixed_precision,
                deepspeed_plugin=args.deepspeed_plugin,
                gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=1),
            )
            propagate_args_to_deepspeed(accelerator, args)
            ds = accelerator.state.deepspeed_plugin.hf_ds_config
            ds.trainer_config_finalize(args, tiny, num_training_steps=100)  # raises on any mismatch
            assert ds.config["bf16"]["enabled"] is autocast, where
            assert ds.dtype() == (torch.bfloat16 if autocast else torch.float32), where
            assert ds.config["zero_optimization"]["stage"] == int(env["ACCELERATE_DEEPSPEED_ZERO_STAGE"]), where
            assert ds.config["train_micro_batch_size_per_gpu"] == args.per_device_train_batch_size, where
        if env.get("ACCELERATE_USE_FSDP") == "true":
            plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables, as the Accelerator builds it
            if args.mixed_precision != "no":
                plugin.set_mixed_precision(args.mixed_precision)
                assert plugin.mixed_precision_policy.param_dtype == torch.bfloat16, where
            assert plugin.fsdp_version == 2 and plugin.cpu_ram_efficient_loading, where
        assert args.bf16 is autocast, where
        assert args.mixed_precision == ("bf16" if autocast else "no"), where  # what the accelerator autocasts to


def test_launcher_precision_that_contradicts_the_run_is_a_clear_error(launched, monkeypatch, tmp_path):
    from bayling.train.args import sft_args

    monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda *a, **k: True)
    launched(REPO / "configs" / "accelerate" / "deepspeed_zero2.yaml")
    cfg = load_config(RunConfig, REPO / "configs" / "train" / "full_bf16_gpu.yaml", ["train.bf16=false"]).train
    with pytest.raises(
        ConfigError, match=r"launcher sets mixed_precision=bf16.*--mixed_precision no or set train.bf16"
    ):
        sft_args(cfg, tmp_path, "cuda")
    # a GPU preset on a CPU run: bf16 autocast would slow CPU down and disagree with the bf16-loaded LoRA base
    launched(REPO / "configs" / "accelerate" / "ddp_multi_gpu.yaml")
    cfg = load_config(RunConfig, REPO / "configs" / "train" / "lora_packed_cpu.yaml").train
    with pytest.raises(ConfigError, match=r"mixed_precision=bf16.*train.bf16=true on cpu"):
        sft_args(cfg, tmp_path, "cpu")
    launched(REPO / "configs" / "accelerate" / "ddp_multi_gpu.yaml", "--mixed_precision", "no")
    assert sft_args(cfg, tmp_path, "cpu").mixed_precision == "no"


def test_sharding_accelerate_cannot_do_here_is_refused_before_loading(launched, monkeypatch, tmp_path):
    """FSDP on CPU (accelerate runs CPU processes as plain MULTI_CPU DDP) and multi-process DeepSpeed without
    a GPU (accelerate gives DeepSpeed no process group there) fail with the reason, not an unsharded run."""
    from bayling.train.args import sft_args

    cfg = load_config(RunConfig, REPO / "configs" / "train" / "lora_packed_cpu.yaml").train
    launched(REPO / "configs" / "accelerate" / "fsdp.yaml", "--mixed_precision", "no")
    with pytest.raises(ConfigError, match=r"asks for FSDP, but accelerate set up NO on cpu"):
        sft_args(cfg, tmp_path, "cpu")
    launched(REPO / "configs" / "accelerate" / "deepspeed_zero3.yaml", "--mixed_precision", "no")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=r"DeepSpeed with 2 processes.*world size 1"):
        sft_args(cfg, tmp_path, "cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    args = sft_args(cfg, tmp_path, "cpu")  # one process: DeepSpeed's own CPU accelerator (run for real in -m slow)
    assert args.deepspeed_plugin.zero_stage == 3 and not args.use_cpu


def test_qlora_load_arguments_follow_the_launcher(launched, monkeypatch, tmp_path):
    """bitsandbytes needs CUDA, so the 4-bit load itself is a GPU check; its arguments are checked here."""
    import torch
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from bayling.train.args import sft_args
    from bayling.train.model import pretrained_kwargs

    cfg = load_config(RunConfig, REPO / "configs" / "train" / "qlora_gpu.yaml").train
    monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda *a, **k: True)
    # DDP: each rank loads onto its own GPU
    launched(REPO / "configs" / "accelerate" / "ddp_multi_gpu.yaml")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    kw = pretrained_kwargs("qlora", True, "cuda")
    assert kw["device_map"] == {"": "cuda:1"} and kw["quantization_config"].bnb_4bit_quant_storage == torch.uint8
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("LOCAL_RANK")
    # ZeRO-3: no device_map (transformers rejects one), 4-bit weights stored as bf16 so ZeRO can shard them
    launched(REPO / "configs" / "accelerate" / "deepspeed_zero3.yaml")
    args = sft_args(cfg, tmp_path, "cuda")  # noqa: F841 - alive: it is what makes ZeRO-3 live
    kw = pretrained_kwargs("qlora", True, "cuda")
    assert "device_map" not in kw and kw["quantization_config"].bnb_4bit_quant_storage == torch.bfloat16
    assert kw["dtype"] == torch.bfloat16
    unset_hf_deepspeed_config()
    # FSDP: the same bf16 storage
    launched(REPO / "configs" / "accelerate" / "fsdp.yaml")
    kw = pretrained_kwargs("qlora", True, "cuda")
    assert "device_map" not in kw and kw["quantization_config"].bnb_4bit_quant_storage == torch.bfloat16


def test_two_stage_preset_ships_the_monolingual_text_it_names():
    """``two_stage_alma.yaml`` runs as written: its stage-1 text ships (German and Chinese, written for bayling)."""
    from collections import Counter

    from bayling.train.data import read_texts

    py3langid = pytest.importorskip("py3langid")
    cfg = load_config(RunConfig, REPO / "configs" / "train" / "two_stage_alma.yaml")
    texts = read_texts(REPO / cfg.train.cpt.data)
    assert Counter(py3langid.classify(t)[0] for t in texts) == {"de": 25, "zh": 25}
    assert set(cfg.data.languages) >= {"deu_Latn", "zho_Hans"}
