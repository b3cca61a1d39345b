"""The endpoints' docstrings as Gradio reads them for API and MCP clients.

Gradio 6.31 (`gradio.utils.get_function_description`, pinned in requirements.txt) reads an `Args:`
section one line per parameter, so a description wrapped onto a second line lost that line (the MCP
tool's `pdf_file` ended at "for a file on the"), and it joins a `Returns:` section's lines with ", "
("a review of an, ML paper"). The docstrings in app/api.py wrap as the code does; `one_line_items`
joins each parameter's description, and the Returns text, onto one line before Gradio reads them."""

from __future__ import annotations

import inspect
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)
_SECTIONS = ("Args:", "Returns:")


def one_line_items(fn: F) -> F:
    """`fn` with its docstring rewritten: one line per parameter under Args, one line under Returns."""
    doc = inspect.getdoc(fn)
    if not doc:
        return fn
    params = set(inspect.signature(fn).parameters)
    out: list[str] = []
    section = ""
    for line in doc.splitlines():
        text = line.strip()
        if text in _SECTIONS:
            section = text
            out.append(text)
        elif not text or not section:
            out.append(line)
        elif section == "Args:" and text.split(":", 1)[0] in params and ":" in text:
            out.append("    " + text)  # a parameter's first line
        elif out and out[-1].strip() and out[-1].strip() not in _SECTIONS:
            out[-1] += " " + text  # a wrapped line: onto the item (or the Returns text) it continues
        else:
            out.append("    " + text)
    fn.__doc__ = "\n".join(out)
    return fn
