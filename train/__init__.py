"""Reproduce the fine-tuned reviewer: `python -m train.prepare_data`, then `python -m train.sft`."""
