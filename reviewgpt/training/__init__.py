"""Reproduce the model: data prep (papers + human reviews -> targets) and QLoRA SFT with TRL."""
