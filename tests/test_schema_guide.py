"""Schema-guided decoding: each aspect header once, in the schema's order; the words stay the model's."""

import pytest
import torch

from reviewgpt.config import EngineConfig, GenerationConfig, bundled_engine_config
from reviewgpt.format.review_format import parse
from reviewgpt.format.schema import EMPTY_MARKER, get_schema
from reviewgpt.generate.engine import load_engine
from reviewgpt.generate.marker_probe import MarkerProbe
from reviewgpt.generate.schema_guide import SchemaGuideProcessor
from reviewgpt.generate.suppression import marker_start_token_ids
from reviewgpt.prepare.chat import end_token_ids

from .conftest import MARKER_PAPER, ROOT


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _adversarial_review(tokenizer, schema: str, seed: int, steps: int = 900, guided: bool = True
                        ) -> tuple[list[int], bool]:
    """Decode (with the guide, or without as a control) from logits that push, at random steps, towards a
    newline, a header start of any kind, the end token or a word: the moves by which a small model breaks
    the format."""
    ends = end_token_ids(tokenizer)
    pushes = [_ids(tokenizer, "\n")[0], _ids(tokenizer, "##")[0], _ids(tokenizer, "#")[0], ends[0], ends[-1],
              _ids(tokenizer, " the")[0], _ids(tokenizer, "## Potential")[-1]]
    guide = SchemaGuideProcessor(tokenizer, schema, ends)
    gen = torch.Generator().manual_seed(seed)
    prompt = _ids(tokenizer, "a prompt")
    out: list[int] = []
    for _ in range(steps):
        logits = torch.randn(1, len(tokenizer), generator=gen)
        logits[0, pushes[int(torch.randint(len(pushes), (1,), generator=gen))]] += 12.0
        scores = guide(torch.tensor([prompt + out]), logits) if guided else logits
        token = int(torch.multinomial(torch.softmax(scores, -1), 1, generator=gen))
        if token in ends:
            return out, True
        out.append(token)
    return out, False


@pytest.mark.parametrize("schema", ["4", "7"])
@pytest.mark.parametrize("seed", range(4))
def test_headers_come_once_each_in_order_whatever_the_logits_push_for(tokenizer, schema, seed):
    out, ended = _adversarial_review(tokenizer, schema, seed)
    text = tokenizer.decode(out)
    criteria = get_schema(schema).criteria
    header_lines = [line for line in text.split("\n") if line.lstrip().startswith("#")]
    assert header_lines == [f"## {c}" for c in criteria], text
    assert text.startswith(f"## {criteria[0]}\n")
    assert ended, "after the last header a header start becomes the end of the review"
    report = parse(text, schema).report
    assert not report.missing and report.in_order


@pytest.mark.parametrize("schema", ["4", "7"])
def test_without_the_guide_the_same_pushes_break_the_format(tokenizer, schema):
    """The control: the same adversarial logits, unguided, do break the format."""
    for seed in range(4):
        out, _ = _adversarial_review(tokenizer, schema, seed, guided=False)
        report = parse(tokenizer.decode(out), schema).report
        assert report.missing or not report.in_order


def test_at_a_line_start_header_starts_and_the_end_move_onto_the_expected_header(tokenizer):
    ends = end_token_ids(tokenizer)
    guide = SchemaGuideProcessor(tokenizer, "4", ends)
    first = _ids(tokenizer, f"## {get_schema('4').criteria[0]}") + _ids(tokenizer, "\n")
    prompt = _ids(tokenizer, "a prompt")
    raw = torch.randn(1, len(tokenizer), generator=torch.Generator().manual_seed(1))
    for k in range(len(first)):  # the first header is forced, token by token
        scores = guide(torch.tensor([prompt + first[:k]]), raw.clone())
        assert torch.isfinite(scores[0]).sum() == 1 and scores[0].argmax() == first[k]
    body = _ids(tokenizer, "1. **A point**: it is clear.\n\n")
    ids = torch.tensor([prompt + first])
    for t in body:  # the model's own words pass through untouched
        scores = guide(ids, raw.clone())
        ids = torch.cat([ids, torch.tensor([[t]])], 1)
    scores = guide(ids, raw.clone())  # a line start, headers to go
    p_raw, p = torch.softmax(raw[0], -1), torch.softmax(scores[0], -1)
    hash_ids = [i for i in range(len(tokenizer)) if tokenizer.decode([i]).lstrip().startswith("#")
                and i not in tokenizer.all_special_ids]
    target = _ids(tokenizer, "##")[0]
    moved = p_raw[sorted(set(hash_ids) | set(ends))].sum()
    assert p[target].item() == pytest.approx(moved.item(), rel=1e-4)
    assert p[sorted((set(hash_ids) | set(ends)) - {target})].sum().item() == 0.0
    marker = marker_start_token_ids(tokenizer)
    assert p[marker].sum().item() == pytest.approx(p_raw[marker].sum().item(), rel=1e-5)  # the marker is the model's


def test_a_model_that_keeps_the_format_writes_the_same_review_with_and_without_the_guide(marker_model_dir):
    """No harm: the marker model writes the 4-aspect format by itself; the guide changes no token, and the
    marker probe reads the same P(empty) after each header."""
    texts, reports = [], []
    for guided in (False, True):
        engine = load_engine(EngineConfig(base_model=str(marker_model_dir), local_files_only=True,
                                          max_prompt_tokens=1024, max_new_tokens=160, schema_guide=guided))
        probe = MarkerProbe()
        text = engine.generate(MARKER_PAPER, "4", GenerationConfig(max_new_tokens=160, do_sample=False, suppression=0.0),
                               probe=probe)
        texts.append(text)
        reports.append([(a.criterion, a.empty, round(a.p_before, 6)) for a in probe.report(engine.tokenizer, "4", 0.0, text=text).aspects])
    assert texts[0] == texts[1] and EMPTY_MARKER in texts[0]
    assert reports[0] == reports[1]


def test_the_bundled_demo_model_writes_every_header_in_order_as_the_app_runs_it(iclr_papers):
    cfg = bundled_engine_config(ROOT / "assets" / "demo-model")
    assert cfg.schema_guide  # the app decodes the demo model with the guide
    engine = load_engine(cfg)
    for paper in iclr_papers[:2]:
        text = engine.prepare(paper.document, "7").text
        review = engine.generate(text, "7", GenerationConfig(max_new_tokens=cfg.max_new_tokens, seed=0))
        report = parse(review, "7").report
        assert not report.missing and report.in_order, review
        assert sum(c.item_count > 0 or c.empty for c in report.criteria) == 7
