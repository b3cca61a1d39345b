"""Prompt texts kept as files so they can be read, diffed and cited (shared by app, train, eval)."""

from importlib import resources


def load_prompt(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.md").read_text()
