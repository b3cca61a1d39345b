"""Test and demo scaffolding, not production code: tiny Llama-shaped models, a local tokenizer."""
