"""Prompt -> review text in this process: the local engine and its decode path, suppression, the schema guide
(the remote side, models behind an OpenAI-compatible API, is `reviewgpt.remote`)."""
