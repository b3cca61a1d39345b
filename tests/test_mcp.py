"""The app's MCP server (Gradio's, at /gradio_api/mcp/) through a real MCP client (the `mcp` package):
list the tools, parse a PDF, review its text."""

import asyncio
import base64
import json

import pytest

from .conftest import EXAMPLE_PDFS
from .test_app import app_url  # noqa: F401  (the running app fixture)

pytest.importorskip("mcp", reason="pip install 'gradio[mcp]' (requirements.txt has it)")


def _call(url: str, steps):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def main():
        async with streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await steps(session)

    return asyncio.run(main())


def _json(result) -> dict:
    assert not result.isError, result.content
    return json.loads(result.content[0].text)  # JSON (app/mcp_json.py; Gradio's own server writes a Python repr)


def test_tools_parse_and_review_over_mcp(app_url):  # noqa: F811
    pdf = "data:application/pdf;base64," + base64.b64encode(EXAMPLE_PDFS[1].read_bytes()).decode()

    async def steps(session):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        paper = _json(await session.call_tool("parse", {"pdf_file": pdf, "aspects": "4"}))
        review = await session.call_tool("review", {"paper_text": paper["text"], "aspects": "4",
                                                    "suppression": 0.95, "temperature": 0.0, "seed": 1})
        return tools, paper, review

    tools, paper, review = _call(app_url, steps)
    assert {"parse", "review", "gpt4_review", "judge"} <= set(tools)
    assert "suppression" in tools["review"].inputSchema["properties"]
    assert "empty-item marker" in tools["review"].inputSchema["properties"]["suppression"]["description"]
    assert paper["title"].startswith("Beyond Summarization") and paper["pages"] == 4
    result = _json(review)
    assert result["review"].strip() and len(result["markers"]["aspects"]) == 4
    assert result["settings"]["seed"] == 1



def test_review_over_mcp_takes_parses_id_and_a_loopback_url_is_refused_by_gradio(app_url):  # noqa: F811
    """Issue #26: the id that parse returns reads as its text does; a 127.0.0.1 URL is refused by Gradio's
    SSRF guard (the README says so and names the data: URL instead)."""
    import http.server
    import threading

    pdf = "data:application/pdf;base64," + base64.b64encode(EXAMPLE_PDFS[1].read_bytes()).decode()
    folder = str(EXAMPLE_PDFS[1].parent)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local_url = f"http://127.0.0.1:{server.server_port}/{EXAMPLE_PDFS[1].name}"

    async def steps(session):
        paper = _json(await session.call_tool("parse", {"pdf_file": pdf, "aspects": "4"}))
        args = {"aspects": "4", "suppression": 0.95, "temperature": 0.0, "seed": 2}
        by_id = _json(await session.call_tool("review", {"paper_text": paper["id"], **args}))
        by_text = _json(await session.call_tool("review", {"paper_text": paper["text"], **args}))
        refused = await session.call_tool("parse", {"pdf_file": local_url, "aspects": "4"})
        return paper, by_id, by_text, refused

    try:
        paper, by_id, by_text, refused = _call(app_url, steps)
    finally:
        server.shutdown()
    assert paper["id"].startswith("parsed:")
    assert by_id["model_input"] == by_text["model_input"] == paper["model_input"]
    assert by_id["review"] == by_text["review"]
    assert refused.isError and "Hostname 127.0.0.1 failed validation" in refused.content[0].text  # Gradio's guard


def test_rate_tool_and_endpoint(app_url):  # noqa: F811
    """The calibrated rating over MCP and through gradio_client: the same numbers as `eval rate`."""
    import json
    from pathlib import Path

    from gradio_client import Client

    from reviewgpt.rating.artifact import default_model
    from reviewgpt.rating.data import read_rated_reviews

    review = read_rated_reviews(Path(__file__).parent / "fixtures" / "rating" / "iclr2017")[0].text
    recipe = json.loads((Path(__file__).parent / "fixtures" / "rating" / "not_reviews.jsonl").read_text()
                        .splitlines()[0])["text"]

    async def steps(session):
        tools = {t.name for t in (await session.list_tools()).tools}
        return tools, _json(await session.call_tool("rate", {"review": review}))

    tools, over_mcp = _call(app_url, steps)
    expect = default_model().rate([review])[0]
    assert "rate" in tools and over_mcp["calibrated"] is True
    assert (over_mcp["rating"], over_mcp["low"], over_mcp["high"], over_mcp["p_accept"]) == (
        expect.rating, expect.low, expect.high, expect.p_accept)
    assert "calibrated on ICLR 2017 reviews" in over_mcp["label"]
    client = Client(app_url, verbose=False)
    assert client.predict(review, api_name="/rate")["rating"] == expect.rating
    off = client.predict(recipe, api_name="/rate")
    assert off["calibrated"] is False and off["rating"] is None and "not about machine learning" in off["reason"]


def test_tool_descriptions_keep_every_wrapped_line(app_url):  # noqa: F811
    """Gradio reads a docstring's Args one line per parameter and joins Returns' lines with ", ": an MCP
    client read parse's pdf_file as "...(for a file on the" and rate's result as "a review of an, ML paper"
    (app/api_docs.py joins each item onto one line first)."""

    async def steps(session):
        return {t.name: t for t in (await session.list_tools()).tools}

    tools = _call(app_url, steps)
    args = {name: {p: d.get("description", "") for p, d in t.inputSchema["properties"].items()}
            for name, t in tools.items()}
    assert args["parse"]["pdf_file"].endswith("run beside the MCP client).")
    assert args["review"]["paper_text"].endswith("other text is cut at the end of the budget.")
    assert args["judge"]["human_reviews"].endswith("(its ground truth), as on the page.")
    rate = tools["rate"].description
    assert "a review of an ML paper (a paper's own text, a recipe, gibberish) gets calibrated false, the numbers null and" in rate
    assert "status (verified | related | not_found)" in tools["ground"].description
    assert "empty or not;" in tools["review"].description
