"""The fine-tuned reviewer as one GGUF file for llama.cpp: merge the LoRA adapter, then convert.

    python -m train.export_gguf --bundled assets/demo-model --outtype f32          # the demo model
    python -m train.export_gguf --base meta-llama/Llama-3.1-8B-Instruct \\
        --adapter runs/llama31-8b-reviewer/checkpoint-1800 --outtype q8_0          # the recipe's 8B

1. peft's `merge_and_unload` folds the adapter into the base weights (fp32 for `--outtype f32`, else
   bf16, the weights' own precision), saved with the tokenizer the engine would use (the adapter's
   folder when it has one, else the base's) as a plain Hugging Face folder, `OUT/hf`.
2. llama.cpp's own converter (`train.gguf_converter`) writes `OUT/<name>-<outtype>.gguf`.

The converter names a BPE tokenizer's pre-tokenizer by hashing the ids it gives a test string, so it
knows only the vocabularies in its table: the Llama 3.1 tokenizer is found ('llama-bpe'), a Llama 3.1
style tokenizer with its own vocabulary (the demo model's) is not, and the converter stops. Then, and
only then, this module checks the tokenizer's definition itself (`llama3_tokenizer_problems`): the
same split regex and byte-level steps as Llama 3's tokenizer.json, no normalizer, and merges that give
every token of the vocabulary as itself (so llama.cpp's 'llama-bpe', which ignores merges for a word in
the vocabulary, splits every text the same way); if all hold it is 'llama-bpe', otherwise the
converter's error stands with the reasons. The converter also imports sentencepiece before it
looks for a BPE tokenizer (requirements-train.txt has it).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import runpy
import sys
from pathlib import Path
from typing import Any, Iterator

from train.gguf_converter import SCRIPT, converter_dir

log = logging.getLogger(__name__)

OUTTYPES = ("f32", "f16", "bf16", "q8_0", "auto")  # the converter's --outtype choices used here
LLAMA3_PRE = "llama-bpe"  # llama.cpp's name for Llama 3's pre-tokenizer (its regex, ignore_merges, BOS added)
# The split regex of Llama 3's tokenizer.json (llama.cpp's src/llama-vocab.cpp quotes it for LLAMA3).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_tokenizer_problems(tokenizer_json: Path) -> list[str]:
    """Why this tokenizer.json does not split text as Llama 3's does; empty when it does."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    model, pre = spec.get("model") or {}, spec.get("pre_tokenizer") or {}
    problems = []
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        problems.append(f"model is {model.get('type')!r} (byte_fallback {model.get('byte_fallback')}), not byte-level BPE")
    if spec.get("normalizer"):
        problems.append(f"it has a normalizer ({spec['normalizer'].get('type')})")
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    split = steps[0] if steps else {}
    if not (len(steps) == 2 and split.get("type") == "Split" and split.get("pattern") == {"Regex": LLAMA3_SPLIT}
            and split.get("behavior") == "Isolated" and not split.get("invert")):
        problems.append("its pre-tokenizer's first step is not Llama 3's split regex (Isolated)")
    level = steps[1] if len(steps) == 2 else {}
    if not (level.get("type") == "ByteLevel" and not level.get("add_prefix_space") and not level.get("use_regex")):
        problems.append("its pre-tokenizer's second step is not ByteLevel without prefix space and regex")
    if not problems and not model.get("ignore_merges"):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tokenizer_json))
        unreached = [s for s, i in tok.get_vocab(with_added_tokens=False).items()
                     if [t.id for t in tok.model.tokenize(s)] != [i]]
        if unreached:
            problems.append(f"{len(unreached)} vocabulary tokens are not what their own merges give "
                            f"(e.g. {unreached[:3]}), so llama.cpp's ignore_merges would split differently")
    return problems


@contextlib.contextmanager
def _llama3_pre_fallback(hf_dir: Path) -> Iterator[None]:
    """While converting: a BPE pre-tokenizer the converter's hash table lacks is 'llama-bpe' when the
    tokenizer's definition is Llama 3's (checked above); any other stays the converter's error."""
    from conversion import base  # the converter's package, on sys.path by now

    table = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self: Any, tokenizer: Any) -> str:
        try:
            return table(self, tokenizer)
        except NotImplementedError as e:
            problems = llama3_tokenizer_problems(hf_dir / "tokenizer.json")
            if problems:
                raise NotImplementedError(f"{e}; not Llama 3's pre-tokenizer either: {'; '.join(problems)}") from e
            log.info("pre-tokenizer: not in the converter's table (another vocabulary), defined as Llama 3's: %s",
                     LLAMA3_PRE)
            return LLAMA3_PRE

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    try:
        yield
    finally:
        base.TextModel.get_vocab_base_pre = table


def merge(base_model: str, adapter: str | None, out_dir: Path, outtype: str) -> Path:
    """The base with the adapter folded in, and the reviewer's tokenizer, as a Hugging Face folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.float32 if outtype == "f32" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    # the tokenizer as the engine picks it (reviewgpt.generate.engine): the adapter's, else the base's
    tok_source = adapter if adapter and (Path(adapter) / "tokenizer_config.json").exists() else base_model
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(tok_source).save_pretrained(out_dir)
    del model
    gc.collect()
    return out_dir


def convert(hf_dir: Path, outfile: Path, outtype: str, name: str, llama_cpp: str | None = None) -> Path:
    """llama.cpp's convert_hf_to_gguf.py on `hf_dir`, in this process (its `main()` reads sys.argv)."""
    folder = converter_dir(llama_cpp)
    argv = [str(folder / SCRIPT), str(hf_dir), "--outfile", str(outfile), "--outtype", outtype, "--model-name", name]
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.path[:0] = [str(folder / "gguf-py"), str(folder)]  # its gguf first, as the script itself arranges
    sys.argv = argv
    try:
        with _llama3_pre_fallback(hf_dir):
            runpy.run_path(argv[0], run_name="__main__")
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    if not outfile.is_file():
        raise RuntimeError(f"the converter wrote no {outfile}")
    return outfile


def export(base_model: str, adapter: str | None, out_dir: Path, outtype: str = "auto", name: str = "reviewer",
           llama_cpp: str | None = None) -> Path:
    """Merge, then convert: the GGUF's path."""
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype {outtype!r}: one of {' | '.join(OUTTYPES)}")
    hf_dir = merge(base_model, adapter, out_dir / "hf", outtype)
    return convert(hf_dir, out_dir / f"{name}-{outtype}.gguf", outtype, name, llama_cpp)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bundled", help="a model folder with engine.yaml (assets/demo-model): its base and adapter")
    src.add_argument("--base", help="the base model: Hub id or folder")
    p.add_argument("--adapter", help="the LoRA adapter folder (with --base); none: the base alone")
    p.add_argument("--out", type=Path, default=Path("outputs/gguf"), help="folder for hf/ and the .gguf")
    p.add_argument("--outtype", choices=OUTTYPES, default="auto",
                   help="GGUF weights; auto: the converter's choice (16-bit), f32 as the app runs the demo")
    p.add_argument("--name", default=None, help="model name in the GGUF and its file name (default: the folder's)")
    p.add_argument("--llama-cpp", default=None, help="a llama.cpp checkout's folder (default: LLAMA_CPP_DIR, "
                   "else the converter fetched by `python -m train.gguf_converter`)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.bundled:
        from reviewgpt.config import bundled_engine_config

        engine = bundled_engine_config(args.bundled)
        base_model, adapter = engine.base_model, engine.adapter
        name = args.name or Path(args.bundled).resolve().name
    else:
        base_model, adapter = args.base, args.adapter
        name = args.name or Path(adapter or base_model).name
    print(export(base_model, adapter, args.out, args.outtype, name, args.llama_cpp))


if __name__ == "__main__":
    main()
