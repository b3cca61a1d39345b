"""Reproduce the comparison: `python -m eval all --config eval/configs/recipe.yaml`."""
