"""The remote side: models answered over an OpenAI-compatible API (GPT-4, the fine-tuned reviewer on a server)."""
