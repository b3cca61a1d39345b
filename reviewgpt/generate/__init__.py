"""Prompt -> review text: the local engine (with suppression) and the GPT side (openai client)."""
