"""Export a trained model: a merged safetensors model, and a LoRA adapter as GGUF for llama.cpp.

Run as::

    python -m bayling.train.export runs/quickstart/train/final --merged runs/quickstart/train/merged
    python -m bayling.train.export runs/quickstart/train/final --gguf runs/quickstart/train/adapter.gguf

or set ``train.export: [merged, gguf]`` in the config. The GGUF adapter is applied on top of the base
GGUF at load time (``Llama(model_path=BASE.gguf, lora_path=adapter.gguf)``), so the 240 MB quantised
base ships once and each fine-tune is a few MB.

The LoRA converter is llama.cpp's ``convert_lora_to_gguf.py``. It is not on PyPI as a module, but the
llama-cpp-python *sdist* vendors llama.cpp, so the first GGUF export runs (once, ~77 MB)::

    pip download llama-cpp-python==VERSION --no-deps --no-binary :all: -d $BAYLING_CACHE/sdist

and unpacks only the converter scripts under ``$BAYLING_CACHE/llama.cpp/VERSION``. Set
``BAYLING_LLAMA_CPP_DIR`` to a llama.cpp checkout to use that instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from bayling.errors import BaylingError, ModelError, require
from bayling.models import cache_dir

log = logging.getLogger(__name__)

DEFAULT_LLAMA_CPP_VERSION = "0.3.36"
_CONVERTER_PARTS = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def _atomic_dir(out: Path) -> Path:
    from bayling.io import atomic_temp_dir

    return atomic_temp_dir(out)  # mode 0755 under the default umask (mkdtemp alone makes 0700)


def _replace_dir(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def base_of(adapter_dir: str | Path) -> Path | None:
    """The base model an adapter was trained on (``bayling_base_model.json``, else PEFT's config)."""
    from bayling.validate import field, read_json_object

    adapter_dir = Path(adapter_dir)
    marker = adapter_dir / "bayling_base_model.json"
    if marker.is_file():
        return Path(field(read_json_object(marker), "base_model", "text", str(marker)))
    cfg = adapter_dir / "adapter_config.json"
    if cfg.is_file():
        name = read_json_object(cfg).get("base_model_name_or_path")
        return Path(name) if name else None
    return None


def merge_adapter(
    adapter_dir: str | Path,
    base: str | Path,
    out_dir: str | Path,
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> Path:
    """Fold a LoRA adapter into its base weights and save a plain safetensors model (atomically).

    Args:
        adapter_dir: PEFT adapter directory.
        base: the base model directory it was trained on.
        out_dir: where the merged model (weights, config, tokenizer) goes.
        dtype: ``auto`` keeps the base checkpoint's dtype; or ``bfloat16``/``float32``…
        trust_remote_code: ``model.trust_remote_code`` (the base's own modelling code).

    Returns:
        ``out_dir``.
    """
    transformers = require("transformers", "train")
    peft = require("peft", "train")
    from bayling.models import load_tokenizer, torch_dtype

    out = Path(out_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(base), dtype="auto" if dtype == "auto" else torch_dtype(dtype), trust_remote_code=trust_remote_code
    )
    model = peft.PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    tmp = _atomic_dir(out)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok_src = adapter_dir if (Path(adapter_dir) / "tokenizer_config.json").is_file() else base
        load_tokenizer(tok_src, trust_remote_code).save_pretrained(tmp)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _llama_cpp_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return DEFAULT_LLAMA_CPP_VERSION


def llama_cpp_converter(version: str | None = None) -> Path:
    """A directory holding llama.cpp's ``convert_lora_to_gguf.py`` (+ ``gguf-py``), fetched once into the cache."""
    if os.environ.get("BAYLING_LLAMA_CPP_DIR"):
        root = Path(os.environ["BAYLING_LLAMA_CPP_DIR"]).expanduser()
        if not (root / "convert_lora_to_gguf.py").is_file():
            raise ModelError(f"BAYLING_LLAMA_CPP_DIR={root} has no convert_lora_to_gguf.py")
        return root
    version = version or _llama_cpp_version()
    root = cache_dir() / "llama.cpp" / version
    if (root / "convert_lora_to_gguf.py").is_file():
        return root
    sdist_dir = cache_dir() / "sdist"
    sdist = sdist_dir / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.is_file():
        log.info("downloading the llama-cpp-python %s sdist (~77 MB, once) for its GGUF converter", version)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"llama-cpp-python=={version}",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(sdist_dir),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not sdist.is_file():
            raise ModelError(
                f"could not fetch the llama.cpp converter ({' '.join(cmd)} failed: "
                f"{proc.stderr.strip().splitlines()[-1:] or '?'}); download a llama.cpp checkout and set "
                "BAYLING_LLAMA_CPP_DIR to it"
            )
    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    tmp = _atomic_dir(root)
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            members = []
            for m in tar.getmembers():
                rel = m.name[len(prefix) :] if m.name.startswith(prefix) else None
                if (
                    rel
                    and m.isfile()
                    and any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in _CONVERTER_PARTS)
                ):
                    m.name = rel
                    members.append(m)
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # no links/abs paths (3.10.12+)
            tar.extractall(tmp, members=members, **safe)
        _replace_dir(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def lora_to_gguf(
    adapter_dir: str | Path, out_file: str | Path, base: str | Path | None = None, outtype: str = "f16"
) -> Path:
    """Convert a PEFT LoRA adapter to a llama.cpp GGUF adapter with llama.cpp's own converter.

    Args:
        adapter_dir: PEFT adapter directory (``adapter_config.json`` + ``adapter_model.safetensors``).
        out_file: the ``.gguf`` to write.
        base: HF directory of the base model (architecture and tensor names); default: the adapter's own.
        outtype: ``f16``, ``bf16``, ``f32`` or ``q8_0``.

    Returns:
        ``out_file``.
    """
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_dir} is not a LoRA adapter directory (no adapter_config.json)")
    base = Path(base) if base else base_of(adapter_dir)
    if base is None or not (base / "config.json").is_file():
        raise ModelError(f"base model of {adapter_dir} not found ({base}); pass it explicitly")
    root = llama_cpp_converter()
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "gguf-py"), str(root)])}
    cmd = [
        sys.executable,
        str(root / "convert_lora_to_gguf.py"),
        "--base",
        str(base),
        "--outtype",
        outtype,
        "--outfile",
        str(tmp),
        str(adapter_dir),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ModelError(f"convert_lora_to_gguf.py failed for {adapter_dir}:\n{tail}")
    os.replace(tmp, out)
    return out


def export_all(
    kinds: list[str], final: Path, base: Path, out_dir: Path, trust_remote_code: bool = False
) -> dict[str, Path]:
    """Run the exports named in ``train.export`` for a finished ``final`` directory."""
    is_adapter = (final / "adapter_config.json").is_file()
    done: dict[str, Path] = {}
    if "merged" in kinds:
        merged = out_dir / "merged"
        done["merged"] = (
            merge_adapter(final, base_of(final) or base, merged, trust_remote_code=trust_remote_code)
            if is_adapter
            else final
        )
    if "gguf" in kinds:
        if not is_adapter:
            raise BaylingError(f"{final} is a full model, not a LoRA adapter; GGUF export converts adapters only")
        done["gguf"] = lora_to_gguf(final, out_dir / "adapter.gguf", base_of(final) or base)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bayling.train.export", description=__doc__.split("\n\n")[0])
    p.add_argument("adapter", help="trained LoRA adapter directory (e.g. RUN/train/final)")
    p.add_argument("--base", help="base model directory (default: recorded with the adapter)")
    p.add_argument("--merged", help="write a merged safetensors model here")
    p.add_argument("--gguf", help="write the adapter as a llama.cpp GGUF file here")
    p.add_argument("--outtype", default="f16", choices=["f16", "bf16", "f32", "q8_0"])
    args = p.parse_args(argv)
    if not (args.merged or args.gguf):
        p.error("give --merged DIR and/or --gguf FILE")
    try:
        base = Path(args.base) if args.base else base_of(args.adapter)
        if args.merged:
            print(merge_adapter(args.adapter, base, args.merged))
        if args.gguf:
            print(lora_to_gguf(args.adapter, args.gguf, base, args.outtype))
    except BaylingError as e:
        print(f"bayling: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
