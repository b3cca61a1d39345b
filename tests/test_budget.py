from reviewgpt.prepare.budget import TRUNCATION_NOTE, fit_to_budget
from reviewgpt.prepare.chat import encode_prompt
from reviewgpt.ingest.document import Document, Section


def _doc():
    body = "word " * 400
    return Document("My Title", "An abstract. " * 20, [
        Section("1 Introduction", "Intro sentence. " * 100),
        Section("2 Method", body), Section("3 Experiments", body), Section("4 Conclusion", "Done. " * 30),
        Section("A Appendix Proofs", body)])


def test_whole_paper_fits(tokenizer):
    r = fit_to_budget(_doc(), tokenizer, "7", 100_000)
    assert not r.was_cut and r.text == _doc().to_text()
    assert r.prompt_tokens == len(encode_prompt(tokenizer, "7", r.text))
    assert "fits" in r.summary()


def test_cut_keeps_title_abstract_intro_first_and_reports(tokenizer):
    head = Document("My Title", "An abstract. " * 20, [Section("1 Introduction", "Intro sentence. " * 100)])
    budget = fit_to_budget(head, tokenizer, "7", 100_000).prompt_tokens + 150  # room for part of one more section
    r = fit_to_budget(_doc(), tokenizer, "7", budget)
    assert r.prompt_tokens <= budget
    assert r.text.startswith("Title: My Title") and "Abstract:" in r.text and "1 Introduction" in r.text
    assert r.was_cut and r.tokens_dropped > 0
    assert "A Appendix Proofs" in r.dropped_sections
    assert r.truncated_section == "2 Method" and TRUNCATION_NOTE in r.text
    assert "3 Experiments" in r.dropped_sections and "3 Experiments" not in r.text
    assert "dropped" in r.summary() and "shortened" in r.summary()


def test_appendix_goes_before_conclusion_is_dropped(tokenizer):
    overhead = len(encode_prompt(tokenizer, "4", ""))
    doc = _doc()
    full = fit_to_budget(doc, tokenizer, "4", 100_000)
    # Budget for everything except about half of the appendix: conclusion must survive.
    r = fit_to_budget(doc, tokenizer, "4", full.prompt_tokens - 150)
    assert "4 Conclusion" in r.text and r.truncated_section == "A Appendix Proofs"
    assert r.prompt_tokens <= full.prompt_tokens - 150 and overhead < r.prompt_tokens
