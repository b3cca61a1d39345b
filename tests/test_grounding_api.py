"""The /ground endpoint over HTTP (gradio_client) and as an MCP tool, on the running app, and
`python -m eval ground` on the command line: one item each of verified, related and not found."""

import base64
import json

from gradio_client import Client, handle_file

from eval.ground import main as ground_cli

from .test_app import app_url  # noqa: F401  (the running app fixture)
from .test_grounding import HYPHENATED, PDF
from .test_mcp import _call, _json

REVIEW = (
    "## Significance and novelty\n"
    f'1. **Accessibility**: The template "{HYPHENATED}".\n\n'
    "## Potential reasons for acceptance\n<No related terms>\n\n"
    "## Potential reasons for rejection\n"
    '1. **Invented claim**: The authors write "our method outperforms every baseline by 40 points".\n\n'
    "## Suggestions for improvement\n"
    "1. **Review mode**: Anonymous review mode and line numbers for submissions are not explained.\n"
)
EXPECTED = [("Significance and novelty", "verified", 1), ("Potential reasons for rejection", "not_found", None),
            ("Suggestions for improvement", "related", 2)]


def _statuses(items: list[dict]) -> list[tuple]:
    return [(i["aspect"], i["status"], i["page"]) for i in items]


def test_ground_endpoint_and_mcp_tool(app_url):  # noqa: F811
    result = Client(app_url, verbose=False).predict(handle_file(str(PDF)), REVIEW, "4", api_name="/ground")
    assert _statuses(result["items"]) == EXPECTED
    assert result["counts"] == {"verified": 1, "related": 1, "not_found": 1}
    assert result["items"][0]["boxes"] and len(result["items"][0]["bbox"]) == 4

    pdf = "data:application/pdf;base64," + base64.b64encode(PDF.read_bytes()).decode()

    async def steps(session):
        tools = {t.name for t in (await session.list_tools()).tools}
        return tools, await session.call_tool("ground", {"pdf_file": pdf, "review": REVIEW, "aspects": "4"})

    tools, out = _call(app_url, steps)
    assert "ground" in tools
    assert _statuses(_json(out)["items"]) == EXPECTED


def test_eval_ground_prints_one_json_line_per_item(tmp_path, capsys):
    review = tmp_path / "review.md"
    review.write_text("---\ntitle: a download's header\nschema: 4-aspect\n---\n" + REVIEW)
    ground_cli(["--pdf", str(PDF), "--review", str(review)])
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert _statuses(lines) == EXPECTED
    assert {"aspect", "item", "quote", "status", "page", "bbox", "passage", "score"} <= set(lines[0])
    assert lines[0]["quote"] == HYPHENATED and lines[1]["quote"].startswith("our method")


def test_eval_ground_says_what_is_wrong_with_a_bad_pdf(tmp_path, capsys):
    import pytest

    bad, review = tmp_path / "paper.pdf", tmp_path / "review.md"
    bad.write_text("not a pdf")
    review.write_text(REVIEW)
    with pytest.raises(SystemExit) as e:
        ground_cli(["--pdf", str(bad), "--review", str(review)])
    assert e.value.code == 2 and "not a PDF" in capsys.readouterr().err
