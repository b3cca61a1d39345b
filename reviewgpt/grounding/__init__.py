"""Grounding: every review item traced to the paper.

A quote the reviewer wrote is checked against the Document's text (verified / not found) and, when
found, located on the PDF's pages with its boxes; an item without a quote gets the best-matching
passage by BM25 (a "related passage", never presented as a quote). Entry points: `PaperIndex`
(built once per paper) and `ground_review` / `ground_item` (cheap, per review).
"""

from reviewgpt.grounding.config import GroundingConfig
from reviewgpt.grounding.evidence import STATUSES, Box, Evidence, Status, counts
from reviewgpt.grounding.ground import ground_item, ground_review
from reviewgpt.grounding.index import PaperIndex

__all__ = ["STATUSES", "Box", "Evidence", "GroundingConfig", "PaperIndex", "Status", "counts", "ground_item",
           "ground_review"]
