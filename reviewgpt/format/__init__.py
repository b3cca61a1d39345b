"""The review schemas (4 and 7 aspects) and the review format: render and a tolerant parse."""
