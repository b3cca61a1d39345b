"""Eval that can be trusted and scaled: fingerprinted results, one input for every system and the
judge, the parallel judge (concurrency, Retry-After, a real kill), served systems, config rules."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from reviewgpt.compare.evaluation.config import EvalConfig, Matchup, SystemSpec
from reviewgpt.compare.evaluation.inputs import prepared_inputs
from reviewgpt.compare.evaluation.report import compute, report
from reviewgpt.compare.evaluation.stages import generate, judge, judgement_store, review_store
from reviewgpt.compare.evaluation.stats import aspect_stats
from reviewgpt.compare.evaluation.systems import generation, make_runner, merges_adapter, system_config
from reviewgpt.config import RECIPE_MAX_PROMPT_TOKENS, RECIPE_SUPPRESSION, OpenAIConfig, load_config
from reviewgpt.prepare.chat import BOS, render_prompt

from .conftest import ROOT
from .support.eval_configs import local_vs_gpt
from .support.openai_server import API_KEY, Step


def _local_cfg(tmp_path, data_file, model_dirs, server, limit=2, budget=400):
    return local_vs_gpt(tmp_path, data_file, model_dirs, server, limit=limit, max_prompt_tokens=budget,
                        max_new_tokens=24, bootstrap_samples=100)


def _gpt_cfg(tmp_path, data_file, server, limit=6, out="eval", concurrency=3):
    return EvalConfig(
        data=str(data_file), out_dir=str(tmp_path / out), limit=limit, schemas=["4"], bootstrap_samples=100,
        systems=[SystemSpec("gpt4", kind="openai", model="gpt-4-1106-preview"),
                 SystemSpec("gpt4o", kind="openai", model="gpt-4o", generation={"temperature": 0.2})],
        matchups=[Matchup("gpt4", "gpt4o", "4")], judge_concurrency=concurrency,
        openai=OpenAIConfig(api_key=API_KEY, base_url=server.base_url, max_retries=2))


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.open()] if path.exists() else []


def test_changing_suppression_redoes_only_what_it_determines(tmp_path, data_file, model_dirs, openai_env):
    cfg = _local_cfg(tmp_path, data_file, model_dirs, openai_env)
    generate(cfg)
    judge(cfg)
    reviews_before = _lines(tmp_path / "eval" / "reviews.jsonl")
    judgements_before = _lines(tmp_path / "eval" / "judgements.jsonl")
    assert len(reviews_before) == 6 and len(judgements_before) == 6
    n_requests = len(openai_env.state.requests)

    cfg.system("ft+supp").generation.suppression = 0.5  # the one change
    generate(cfg)
    new_reviews = _lines(tmp_path / "eval" / "reviews.jsonl")[6:]
    assert [(r["system"], r["system_config"]["settings"]["suppression"]) for r in new_reviews] == [("ft+supp", 0.5)] * 2
    assert len(openai_env.state.requests) == n_requests  # the GPT-4 reviews were not asked again
    judge(cfg)
    new_judgements = _lines(tmp_path / "eval" / "judgements.jsonl")[6:]
    assert sorted({r["matchup"] for r in new_judgements}) == ["ft+supp vs ft (4-aspect)", "ft+supp vs gpt4 (4-aspect)"]
    assert len(new_judgements) == 4 and len(openai_env.state.requests) == n_requests + 4 * 2
    new_keys = {r["key"] for r in new_reviews}
    assert all(r["review_a"] in new_keys for r in new_judgements)

    res = compute(cfg)  # the report uses the new reviews and verdicts, and only those
    assert res.stale_reviews == 2 and res.stale_judgements == 4
    supp = next(a for a in res.aspects if a.system == "ft+supp")
    assert supp == aspect_stats("ft+supp", "4", [r["review"] for r in new_reviews])
    conf = next(c for c in res.configs if c["system"] == "ft+supp")
    assert conf["settings"]["suppression"] == 0.5
    text = report(cfg).read_text()
    assert conf["key"][:10] in text and "suppression=0.5" in text and "Not used" in text

    judge(cfg)  # nothing left to do
    generate(cfg)
    assert len(openai_env.state.requests) == n_requests + 8


def test_every_system_and_the_judge_read_the_same_prepared_text(tmp_path, data_file, model_dirs, openai_env):
    cfg = _local_cfg(tmp_path, data_file, model_dirs, openai_env, budget=300)
    cfg.systems = [cfg.system("ft"), cfg.system("gpt4")]
    cfg.matchups = [Matchup("ft", "gpt4", "4")]
    seen = []

    class Recording:
        def __init__(self, inner):
            self.inner, self.batch_size = inner, inner.batch_size

        def review(self, texts, schema):
            seen.extend(texts)
            return self.inner.review(texts, schema)

    generate(cfg, systems={"ft": Recording(make_runner(cfg.system("ft"), cfg))})
    judge(cfg)
    inputs = prepared_inputs(cfg)
    texts = {row["text"] for row in inputs.values()}
    assert all(row["input"]["budget"] == 300 and row["input"]["dropped_sections"] or row["input"]["truncated_section"]
               for row in inputs.values())  # the budget is small: every paper is cut
    gpt_users = [r["body"]["messages"][1]["content"] for r in openai_env.state.requests
                 if "meta-reviewer" not in r["body"]["messages"][0]["content"]]
    judge_papers = [r["body"]["messages"][1]["content"].split("[Paper]\n", 1)[1].split("\n\n[Human reviews", 1)[0]
                    for r in openai_env.state.requests if "meta-reviewer" in r["body"]["messages"][0]["content"]]
    assert set(seen) == set(gpt_users) == set(judge_papers) == texts and len(judge_papers) == 4
    cut = compute(cfg).cuts[0]
    assert cut.cut_a == cut.cut_b == 1.0 and cut.same_input == 1.0 and cut.dropped_tokens_a > 0
    assert 0 < cut.dropped_share_a < 1 and "same input text for A and B" in report(cfg).read_text()


def _varied(server):
    """Two systems writing different reviews and a judge whose verdict varies by paper (not by order)."""
    server.state.flavour_by_model = {"gpt-4o": "other"}
    server.state.judge_rule = "hash"


def test_judge_runs_n_requests_at_once_with_results_identical_to_serial(tmp_path, data_file, openai_env):
    _varied(openai_env)
    serial = _gpt_cfg(tmp_path, data_file, openai_env, out="serial", concurrency=1)
    generate(serial)
    judge(serial)
    assert openai_env.state.max_in_flight == 1
    openai_env.reset()
    _varied(openai_env)
    openai_env.state.default_delay_s = 0.2
    parallel = _gpt_cfg(tmp_path, data_file, openai_env, out="parallel", concurrency=3)
    generate(parallel)
    openai_env.state.max_in_flight = 0
    openai_env.state.script.append(Step(status=429, retry_after="1", match="meta-reviewer"))
    t0 = time.perf_counter()
    judge(parallel)
    wall = time.perf_counter() - t0
    assert openai_env.state.max_in_flight == 3
    drop = {"timestamp"}

    def rows(c):
        return sorted(json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True)
                      for r in judgement_store(c))
    assert len(rows(parallel)) == 6 and rows(parallel) == rows(serial)
    assert {r["winner"] for r in judgement_store(serial)} == {"A", "B"}  # the comparison is not vacuous
    # the 429 was retried by the client after the server's Retry-After (1 s), not sooner
    judge_reqs = [r for r in openai_env.state.requests if "meta-reviewer" in r["body"]["messages"][0]["content"]]
    limited = [r for r in judge_reqs if r.get("status") == 429]
    assert len(judge_reqs) == 6 * 2 + 1 and len(limited) == 1
    retry = min((r for r in judge_reqs if r["body"] == limited[0]["body"] and r["t"] > limited[0]["t"]),
                key=lambda r: r["t"])
    assert retry["t"] - limited[0]["t"] >= 0.95
    assert wall < 12 * 0.2 + 1  # parallel: well under 12 serial calls of 0.2 s plus the 1 s wait


def test_a_killed_judge_redoes_nothing_that_was_written(tmp_path, data_file, openai_env):
    cfg = _gpt_cfg(tmp_path, data_file, openai_env, limit=8, concurrency=2)
    generate(cfg)
    cfg_file = tmp_path / "eval.yaml"
    data = {"data": cfg.data, "out_dir": cfg.out_dir, "limit": 8, "schemas": ["4"], "judge_concurrency": 2,
            "bootstrap_samples": 100,
            "systems": [{"name": "gpt4", "kind": "openai", "model": "gpt-4-1106-preview"},
                        {"name": "gpt4o", "kind": "openai", "model": "gpt-4o", "generation": {"temperature": 0.2}}],
            "matchups": [{"a": "gpt4", "b": "gpt4o", "schema": "4"}],
            "openai": {"api_key": API_KEY, "base_url": openai_env.base_url, "max_retries": 2}}
    cfg_file.write_text(yaml.safe_dump(data))
    assert load_config(EvalConfig, cfg_file) == cfg  # the subprocess runs exactly this config
    openai_env.state.default_delay_s = 0.4
    out = tmp_path / "eval" / "judgements.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "eval", "judge", "--config", str(cfg_file)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while len(_lines(out)) < 3 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # a real kill, mid-run
    finally:
        proc.wait()
    written = {r["key"] for r in _lines(out)}
    assert 3 <= len(written) < 8, "the kill should land mid-run"
    before = len(openai_env.state.requests)
    openai_env.state.default_delay_s = 0.0
    judge(cfg)
    after = _lines(out)
    assert len(after) == len({r["key"] for r in after}) == 8
    assert len(openai_env.state.requests) - before == 2 * (8 - len(written))  # only the unwritten pairs


def test_a_served_system_in_eval_sends_the_rendered_prompt(tmp_path, data_file, model_dirs, openai_env, monkeypatch):
    monkeypatch.setenv("REVIEWGPT_LOCAL_API_KEY", API_KEY)
    cfg = _gpt_cfg(tmp_path, data_file, openai_env, limit=3)
    cfg.max_prompt_tokens = 500
    cfg.systems = [SystemSpec("served", kind="served", base_url=openai_env.base_url, model="reviewer",
                              tokenizer=str(model_dirs / "base"), generation={"max_new_tokens": 300}),
                   cfg.system("gpt4")]
    cfg.matchups = [Matchup("served", "gpt4", "4")]
    generate(cfg)
    judge(cfg)
    inputs = prepared_inputs(cfg)
    assert cfg.input_tokenizer() == str(model_dirs / "base")
    sent = [r["body"] for r in openai_env.state.requests if r["path"] == "/v1/completions"]
    tok = __import__("transformers").AutoTokenizer.from_pretrained(model_dirs / "base")
    assert sorted(b["prompt"] for b in sent) == sorted(render_prompt(tok, "4", row["text"]) for row in inputs.values())
    assert all(b["logit_bias"] and b["max_tokens"] == 300 for b in sent)  # RECIPE_SUPPRESSION by default
    rows = [r for r in review_store(cfg) if r["system"] == "served"]
    assert len(rows) == 3 and rows[0]["system_config"]["settings"]["suppression"] == RECIPE_SUPPRESSION
    assert compute(cfg).matchups[0].n == 3
    # `server: llama.cpp`: the runner's reviewer writes llama.cpp's requests (no BOS in the string)
    runner = make_runner(SystemSpec("cpp", kind="served", base_url=openai_env.base_url, model="reviewer",
                                    tokenizer=str(model_dirs / "base"), server="llama.cpp"), cfg)
    assert runner.reviewer.config.server == "llama.cpp"
    text = next(iter(inputs.values()))["text"]
    runner.review([text], "4")
    body = openai_env.state.requests[-1]["body"]
    assert BOS + body["prompt"] == render_prompt(tok, "4", text) and body["repeat_penalty"] == 1.0


def test_config_rules_recipe_constants_and_per_schema_adapters(tmp_path, model_dirs):
    cfg = load_config(EvalConfig, ROOT / "eval" / "configs" / "recipe.yaml")
    text = (ROOT / "eval" / "configs" / "recipe.yaml").read_text()
    ft = cfg.system("ft+supp")
    assert cfg.max_prompt_tokens == RECIPE_MAX_PROMPT_TOKENS and ft.generation.suppression == RECIPE_SUPPRESSION
    assert "11138" not in text and "11_138" not in text and "0.95" not in text and "1150" not in text
    assert ft.engine.precision == "bf16" and merges_adapter(ft.engine)  # eval's batch 8: merged bf16
    served = load_config(EvalConfig, ROOT / "eval" / "configs" / "served.yaml")
    assert [s.kind for s in served.systems] == ["served", "served", "openai"]
    assert [m.key for m in served.matchups] == [m.key for m in cfg.matchups]
    assert served.system("ft+supp").generation.suppression == RECIPE_SUPPRESSION
    assert served.system("ft").engine.adapter == ft.engine.adapter  # recorded, not sent
    assert [s.server for s in served.systems if s.kind == "served"] == ["vllm", "vllm"]
    spec = SystemSpec("ft", engine={"base_model": str(model_dirs / "base"), "adapter": str(model_dirs / "adapter")},
                      per_schema={"7": {"engine": {"adapter": str(model_dirs / "base")}}})
    assert spec.for_schema("7").engine.adapter == str(model_dirs / "base")
    assert spec.for_schema("4").engine.adapter.endswith("adapter")
    assert spec.for_schema("7").engine.base_model == spec.engine.base_model  # merged key by key
    a4, a7 = system_config(spec, "4"), system_config(spec, "7")
    assert a4.identity["adapter_id"] != a7.identity["adapter_id"] and a4.key != a7.key
    with pytest.raises(ValueError, match="unknown keys"):
        SystemSpec("x", engine={"base_model": "b"}, per_schema={"4": {"adaptor": "typo"}})
    with pytest.raises(ValueError, match="served needs base_url, model and tokenizer"):
        SystemSpec("x", kind="served", base_url="http://h/v1", model="reviewer")
    with pytest.raises(ValueError, match="kind local needs engine.base_model"):  # not the 8B by default, silently
        SystemSpec("x", engine={"adapter": "a"})


def test_systems_nest_the_engine_and_generation_configs(tmp_path, model_dirs):
    """engine: / generation: as the app's EngineConfig and GenerationConfig; the old flat keys say where they
    went; what older reviews were keyed by is unchanged, and new settings are keyed only where they change it."""
    base, adapter = str(model_dirs / "base"), str(model_dirs / "adapter")
    data = {"name": "ft", "kind": "local", "engine": {"base_model": base, "adapter": adapter},
            "generation": {"suppression": 0.0, "temperature": 0.6}, "batch_size": 8,
            "per_schema": {"7": {"generation": {"temperature": 0.3}, "batch_size": 2}}}
    spec = SystemSpec.from_dict(data)
    assert spec.generation.seed == 0 and spec.generation.top_p == 0.9  # eval's seed, GenerationConfig's rest
    seven = spec.for_schema("7")
    assert (seven.generation.temperature, seven.generation.suppression, seven.batch_size) == (0.3, 0.0, 2)
    # the fingerprint of a system the flat layout could describe: the same settings and identity as before
    old = system_config(spec, "4")
    assert old.settings == {"kind": "local", "suppression": 0.0, "temperature": 0.6, "top_p": 0.9,
                            "max_new_tokens": 1200, "seed": 0, "precision": "auto"}
    assert set(old.identity) == {"adapter", "adapter_id", "tokenizer", "tokenizer_id", "base_model", "base_model_id"}
    served = SystemSpec("s", kind="served", base_url="http://h/v1", model="reviewer", tokenizer=base,
                        engine={"adapter": adapter})
    assert system_config(served, "4").settings == {"kind": "served", "suppression": RECIPE_SUPPRESSION,
                                                   "temperature": 0.6, "top_p": 0.9, "max_new_tokens": 1200,
                                                   "seed": 0, "server_adds_bos": False}
    assert system_config(served, "4").identity["adapter"] == adapter
    # the server preset: vLLM's key as before it existed; the others' requests differ, so their keys do
    keys = {}
    for name, bos, extra in (("vllm", False, {}), ("llama.cpp", True, {"server": "llama.cpp"}),
                             ("sglang", False, {"server": "sglang"})):
        spec = SystemSpec.from_dict({"name": "s", "kind": "served", "base_url": "http://h/v1", "model": "reviewer",
                                     "tokenizer": base, "engine": {"adapter": adapter}, "server": name})
        sc = system_config(spec, "4")
        assert sc.settings == {**system_config(served, "4").settings, "server_adds_bos": bos, **extra}, name
        keys[name] = sc.key
    assert keys["vllm"] == system_config(served, "4").key and len(set(keys.values())) == 3
    # the old flags: a clear message naming `server:`, in YAML and in per_schema too
    for old in ({"server_adds_bos": True}, {"vllm_extras": False}):
        with pytest.raises(ValueError, match=rf"system s: `{next(iter(old))}` is replaced by `server:`.*"
                                             r"`server: vllm \| sglang \| llama\.cpp`"):
            SystemSpec.from_dict({"name": "s", "kind": "served", "base_url": "http://h/v1", "model": "reviewer",
                                  "tokenizer": base, **old})
    old_yaml = tmp_path / "old_served.yaml"
    old_yaml.write_text(yaml.safe_dump({"systems": [{"name": "s", "kind": "served", "base_url": "http://h/v1",
                                                     "model": "reviewer", "tokenizer": base,
                                                     "server_adds_bos": True}]}))
    with pytest.raises(ValueError, match=r"`server_adds_bos` is replaced by `server:` \(llama\.cpp"):
        load_config(EvalConfig, old_yaml)
    with pytest.raises(ValueError, match=r"per_schema\[4\]: `vllm_extras` is replaced by `server:`"):
        SystemSpec("s", kind="served", base_url="http://h/v1", model="reviewer", tokenizer=base,
                   per_schema={"4": {"vllm_extras": True}})
    with pytest.raises(ValueError, match=r"system s: unknown server 'tgi': one of vllm \| sglang \| llama\.cpp"):
        SystemSpec("s", kind="served", base_url="http://h/v1", model="reviewer", tokenizer=base, server="tgi")
    gpt = SystemSpec("g", kind="openai", model="gpt-4o", generation={"temperature": 0.2})
    assert system_config(gpt, "4").settings == {"kind": "openai", "model": "gpt-4o", "temperature": 0.2}

    def settings(engine=None, generation=None):
        return system_config(SystemSpec("x", engine={"base_model": base, "adapter": adapter, **(engine or {})},
                                        generation=generation or {}), "4").settings

    # merged bf16 / fp32 computes other numbers than base + LoRA: keyed, and only then
    assert settings({"precision": "bf16"})["merge_adapter"] is True and settings({"precision": "fp32"})["merge_adapter"]
    for unmerged in ({}, {"precision": "nf4"}, {"precision": "bf16", "merge_adapter": False},
                     {"precision": "bf16", "adapter": None}):  # auto: NF4 or not by machine, so never merged in eval
        assert "merge_adapter" not in settings(unmerged), unmerged
    assert not merges_adapter(SystemSpec("x").engine)
    assert settings({"schema_guide": True})["schema_guide"] is True and "schema_guide" not in settings()
    assert settings(generation={"temperature": 0.6, "do_sample": False})["do_sample"] is False
    assert settings(generation={"repetition_penalty": 1.1})["repetition_penalty"] == 1.1
    assert "do_sample" not in settings(generation={"temperature": 0.0})
    assert generation(SystemSpec("x", generation={"temperature": 0.0})).do_sample is False  # 0 is greedy
    assert generation(SystemSpec("x")).do_sample is True

    # the old flat layout: a clear message naming where each key went
    with pytest.raises(ValueError, match=r"`adapter` is now `engine.adapter`, `temperature` is now `generation\.temp"):
        SystemSpec.from_dict({"name": "ft", "base_model": base, "adapter": adapter, "temperature": 0.6})
    flat = tmp_path / "flat.yaml"
    flat.write_text(yaml.safe_dump({"systems": [{"name": "ft", "kind": "local", "adapter": adapter}]}))
    with pytest.raises(ValueError, match=r"system ft: `adapter` is now `engine.adapter`"):
        load_config(EvalConfig, flat)
    with pytest.raises(ValueError, match=r"per_schema\[4\]: `adapter` is now `engine.adapter`"):
        SystemSpec("x", per_schema={"4": {"adapter": adapter}})
    with pytest.raises(ValueError, match="unknown EngineConfig keys"):
        SystemSpec("x", engine={"base_model": base, "adaptor": adapter})
    with pytest.raises(ValueError, match="max_prompt_tokens is set by the eval"):
        SystemSpec("x", engine={"base_model": base, "max_prompt_tokens": 512})
    with pytest.raises(ValueError, match="generation.max_new_tokens"):
        SystemSpec("x", engine={"base_model": base, "max_new_tokens": 512})
    with pytest.raises(ValueError, match="served reads only engine.adapter"):
        SystemSpec("s", kind="served", base_url="http://h/v1", model="m", tokenizer=base, engine={"precision": "bf16"})


def test_retraining_into_the_same_folder_changes_the_key(tmp_path, model_dirs):
    import shutil

    adapter = tmp_path / "adapter"
    shutil.copytree(model_dirs / "adapter", adapter)
    spec = SystemSpec("ft", engine={"base_model": str(model_dirs / "base"), "adapter": str(adapter)})
    before = system_config(spec, "4").key
    with (adapter / "adapter_model.safetensors").open("r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    assert system_config(spec, "4").key != before


def test_rows_from_an_older_format_are_skipped_not_fatal(tmp_path, data_file, openai_env):
    cfg = _gpt_cfg(tmp_path, data_file, openai_env, limit=2)
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "reviews.jsonl").write_text(json.dumps({"system": "gpt4", "schema": "4", "id": "x",
                                                                 "review": "old"}) + "\n")
    store = generate(cfg)
    assert store.skipped == 1 and len(store) == 4  # the old row is ignored; every current review is written
