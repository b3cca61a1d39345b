"""Reviews -> verdicts: the pairwise judge and the evaluation stages (generate, judge, report)."""
