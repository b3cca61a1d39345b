"""train.export_gguf on the bundled demo model (the README's command): the adapter merged, llama.cpp's own
converter run on it (fetched by scripts/install.sh dev), the GGUF read back with the converter's gguf reader."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from train.export_gguf import LLAMA3_PRE, convert, llama3_tokenizer_problems
from train.gguf_converter import converter_dir

from .conftest import ROOT
from .support.readme_commands import readme_line, run, user_layout

DEMO = ROOT / "assets" / "demo-model"


@pytest.fixture(scope="module")
def gguf_reader():
    folder = converter_dir()
    sys.path.insert(0, str(folder / "gguf-py"))
    try:
        import gguf
    finally:
        sys.path.remove(str(folder / "gguf-py"))
    return gguf.GGUFReader


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The README's export of the demo model, run as written in a folder with the checkout's assets/."""
    work = user_layout(tmp_path_factory.mktemp("user") / "repo", "assets")
    argv = readme_line("python -m train.export_gguf --bundled assets/demo-model")
    out = work / argv[argv.index("--out") + 1]
    assert run(argv, work).strip() == str(out.relative_to(work) / "demo-model-f32.gguf")
    return out / "demo-model-f32.gguf", out


def _field(reader, key):
    return reader.fields[key].contents()


def test_the_demo_model_exports_with_its_adapter_merged_and_llama3_tokenizer(exported, gguf_reader):
    path, out = exported
    assert path == out / "demo-model-f32.gguf"
    r = gguf_reader(path)
    config = json.loads((DEMO / "base" / "config.json").read_text())
    assert _field(r, "general.architecture") == "llama" and _field(r, "general.name") == "demo-model"
    assert _field(r, "llama.block_count") == config["num_hidden_layers"]
    assert _field(r, "llama.attention.head_count_kv") == config["num_key_value_heads"]
    assert _field(r, "tokenizer.ggml.model") == "gpt2" and _field(r, "tokenizer.ggml.pre") == LLAMA3_PRE
    vocab = json.loads((DEMO / "base" / "tokenizer.json").read_text())
    tokens = _field(r, "tokenizer.ggml.tokens")
    assert len(tokens) == config["vocab_size"]
    assert all(tokens[i] == t for t, i in vocab["model"]["vocab"].items())
    assert tokens[config["bos_token_id"]] == "<|begin_of_text|>"
    assert "<|start_header_id|>" in _field(r, "tokenizer.chat_template")
    # the adapter is in the weights: the GGUF's down projection is the merged one, not the base's
    tensors = {t.name: t for t in r.tensors}
    down = np.asarray(tensors["blk.0.ffn_down.weight"].data)
    merged = load_file(out / "hf" / "model.safetensors")["model.layers.0.mlp.down_proj.weight"]
    base = load_file(DEMO / "base" / "model.safetensors")["model.layers.0.mlp.down_proj.weight"].float()
    assert down.dtype == np.float32 and down.shape == tuple(merged.shape)
    assert np.array_equal(down, merged.numpy())
    assert not torch.allclose(base, merged, atol=1e-3)


def test_the_demo_tokenizer_is_defined_as_llama3s():
    assert llama3_tokenizer_problems(DEMO / "base" / "tokenizer.json") == []


def _edited_tokenizer(tmp_path, edit):
    spec = json.loads((DEMO / "base" / "tokenizer.json").read_text())
    edit(spec)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec))
    return path


def test_another_split_regex_or_unreachable_tokens_are_not_llama3(tmp_path):
    gpt2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

    def regex(spec):
        spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = gpt2

    assert any("split regex" in p for p in llama3_tokenizer_problems(_edited_tokenizer(tmp_path, regex)))

    def drop_merge(spec):  # the last merge made the newest token: without it that token is never produced
        spec["model"]["merges"] = spec["model"]["merges"][:-1]

    problems = llama3_tokenizer_problems(_edited_tokenizer(tmp_path, drop_merge))
    assert len(problems) == 1 and "1 vocabulary tokens are not what their own merges give" in problems[0]


def test_a_tokenizer_not_llama3s_stops_the_converter_with_the_reasons(exported, tmp_path):
    _, out = exported
    hf = tmp_path / "hf"
    shutil.copytree(out / "hf", hf)
    spec = json.loads((hf / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "NFC"}
    (hf / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(NotImplementedError, match="not Llama 3's pre-tokenizer either: it has a normalizer"):
        convert(hf, tmp_path / "x.gguf", "f32", "x")
    assert not (tmp_path / "x.gguf").exists()
