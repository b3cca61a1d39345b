"""MCP tool results as JSON (issue #26). Gradio's MCP server writes a result that is not a file with
`str()`, so the app's dict results reached MCP clients as Python reprs (single quotes, None, True).
This subclass writes dicts and lists as JSON and leaves everything else (text, files, images) to
Gradio. gradio 6.31 (pinned in requirements.txt) builds its server at launch as
`gradio.mcp.GradioMCPServer(blocks)` (gradio/routes.py), so `install()` puts the subclass under that
name; the tests read every tool result with json.loads."""

from __future__ import annotations

import json
from typing import Any

import gradio.mcp
from gradio_client import utils as client_utils


class JSONResultMCPServer(gradio.mcp.GradioMCPServer):
    def postprocess_output_data(self, data: Any, root_url: str) -> list:
        out = []
        for output in data:
            if isinstance(output, (dict, list)) and not client_utils.is_file_obj_with_meta(output):
                out.append(self.types.TextContent(type="text", text=json.dumps(output, ensure_ascii=False, indent=1)))
            else:
                out.extend(super().postprocess_output_data([output], root_url))
        return out


def install() -> None:
    """Gradio's MCP server, with JSON results, for every app launched after this call."""
    gradio.mcp.GradioMCPServer = JSONResultMCPServer
