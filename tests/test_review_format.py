from reviewgpt.format.review_format import Review, ReviewItem, parse, render
from reviewgpt.format.schema import EMPTY_MARKER, FOUR_ASPECT, SEVEN_ASPECT, get_schema


def _review(schema, empty=()):
    return Review(schema.name, {
        c: [] if i in empty else [ReviewItem(f"Title {i}.{n}", f"Explanation {i}.{n}: with colon, and (parens).")
                                  for n in range(1, 3)]
        for i, c in enumerate(schema.criteria)})


def test_prompts_are_verbatim_and_list_the_criteria():
    assert SEVEN_ASPECT.system_prompt.startswith('Below is an "Instruction"')
    assert SEVEN_ASPECT.system_prompt.endswith("The given paper is as follows.")
    assert "considers 7 criteria" in SEVEN_ASPECT.system_prompt and SEVEN_ASPECT.n_aspects == 7
    assert FOUR_ASPECT.system_prompt.startswith("You are a helpful assistant, below is")
    assert "considers 4 criteria" in FOUR_ASPECT.system_prompt and FOUR_ASPECT.n_aspects == 4
    assert get_schema("7") is SEVEN_ASPECT and get_schema(4) is FOUR_ASPECT


def test_render_parse_round_trip_both_schemas():
    for schema in (SEVEN_ASPECT, FOUR_ASPECT):
        r = _review(schema, empty=(1,))
        text = render(r)
        assert text.count("## ") == schema.n_aspects and EMPTY_MARKER in text
        parsed = parse(text, schema)
        assert parsed.review == r
        assert parsed.report.is_well_formed
        assert parsed.report.empty == [schema.criteria[1]]
        assert [c.item_count for c in parsed.report.criteria] == [0 if i == 1 else 2 for i in range(schema.n_aspects)]
        assert render(parsed.review) == text


def test_missing_and_reordered_headers():
    s = FOUR_ASPECT
    text = (f"## {s.criteria[2]}\n1. **Weak baselines**: only two.\n\n"
            f"## {s.criteria[0]}\n1. **Novel**: yes.\n")
    rep = parse(text, s).report
    assert rep.missing == [s.criteria[1], s.criteria[3]]
    assert not rep.in_order
    assert parse(text, s).review.sections[s.criteria[2]] == [ReviewItem("Weak baselines", "only two.")]


def test_extra_headers_are_reported_as_unknown_sections():
    s = FOUR_ASPECT
    text = ("## Summary\nThe paper does X.\n\n" + render(_review(s)) +
            "\n## Strengths and Weaknesses Overall\nMixed.\n")
    rep = parse(text, s).report
    assert [h for h, _ in rep.unknown_sections] == ["Summary", "Strengths and Weaknesses Overall"]
    assert not rep.missing and not rep.is_well_formed


def test_bullets_bold_headers_and_plain_titles():
    s = FOUR_ASPECT
    text = ("**Significance and novelty**\n- **Idea**: a new loss.\n* Second point without title\n\n"
            "** Potential reasons for acceptance **\n• Clarity: well written.\n1) Strong results: big gains.\n\n"
            "Potential reasons for rejection:\n<No related terms>\n\n"
            "### Suggestions for improvement\n1. **Ablate**: run ablations.\n   more detail on a second line\n")
    parsed = parse(text, s)
    rep = parsed.report
    assert not rep.missing
    assert [c.item_count for c in rep.criteria] == [2, 2, 0, 1]
    assert rep.empty == [s.criteria[2]]
    sec = parsed.review.sections
    assert sec[s.criteria[0]][1] == ReviewItem("", "Second point without title")
    assert sec[s.criteria[1]][0] == ReviewItem("Clarity", "well written.")
    assert sec[s.criteria[3]][0].explanation == "run ablations. more detail on a second line"


def test_trailing_and_leading_text():
    s = FOUR_ASPECT
    text = "Here is my review:\n\n" + render(_review(s)) + "\nI hope this review helps the authors.\n"
    rep = parse(text, s).report
    assert rep.leading_text == "Here is my review:"
    assert rep.trailing_text == "I hope this review helps the authors."
    assert [c.item_count for c in rep.criteria] == [2, 2, 2, 2]


def test_duplicates_and_marker_as_item_and_prose():
    s = FOUR_ASPECT
    text = (f"## {s.criteria[0]}\n1. <No related terms>\n\n## {s.criteria[1]}\nA prose paragraph only.\n\n"
            f"## {s.criteria[1]}\n1. **More**: again.\n")
    parsed = parse(text, s)
    assert parsed.report.empty == [s.criteria[0]]
    assert parsed.report.duplicates == [s.criteria[1]]
    assert [i.explanation for i in parsed.review.sections[s.criteria[1]]] == ["A prose paragraph only.", "again."]


def test_parser_never_raises_on_garbage():
    for text in ("", "\n\n", "#", "**", "1.", "## \n- \n", "<No related terms>"):
        rep = parse(text, SEVEN_ASPECT).report
        assert len(rep.missing) == 7
