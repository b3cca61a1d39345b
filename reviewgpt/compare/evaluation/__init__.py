"""Reproduce the comparison: generate -> judge -> report, with JSONL files between the stages."""
