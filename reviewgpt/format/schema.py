"""Review schemas: the one source of truth for the 4- and 7-aspect reviews.

Every part of the project (prompt builder, training targets, GPT-4 baseline prompt, renderer,
parser, judge, eval statistics) reads the criteria from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# The empty-item marker the recipe's models write when a criterion has nothing to say.
EMPTY_MARKER = "<No related terms>"

# The recipe's 7-aspect system prompt, verbatim.
SEVEN_ASPECT_PROMPT = """Below is an "Instruction" that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.
Instruction:
You are a professional machine learning conference reviewer who reviews a given paper and considers 7 criteria:
** How to evaluate the idea of the paper **
** Compared to previous similar works, what are the essential differences, such as any fundamental differences, improvements, innovations **
** How to evaluate the experimental results in the paper **
** Potential reasons for acceptance **
** Potential reasons for rejection **
** Other suggestions for further improving the quality of the paper **
** Other important review comments **
The given paper is as follows."""

# The recipe's 4-aspect system prompt, verbatim.
FOUR_ASPECT_PROMPT = """You are a helpful assistant, below is an "Instruction" that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.
Instruction:
you are a professional machine learning conference reviewer who reviews a given paper and considers 4 criteria:
** Significance and novelty **
** Potential reasons for acceptance **
** Potential reasons for rejection **
** Suggestions for improvement **
The given paper is as follows."""


@dataclass(frozen=True)
class ReviewSchema:
    """An ordered list of review criteria plus the system prompt that asks for them."""

    name: str
    criteria: tuple[str, ...]
    system_prompt: str
    # Extra phrasings models use for a criterion (lower-case); used only by the parser.
    aliases: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        # The prompt is the recipe's verbatim text; make sure it lists exactly our criteria.
        for criterion in self.criteria:
            if f"** {criterion} **" not in self.system_prompt:
                raise ValueError(f"criterion {criterion!r} missing from the {self.name} prompt")
        if self.aliases and len(self.aliases) != len(self.criteria):
            raise ValueError("aliases must give one tuple per criterion")

    @property
    def n_aspects(self) -> int:
        return len(self.criteria)

    @property
    def key(self) -> str:
        """'4' or '7': how configs, the API and result rows name the schema."""
        return str(len(self.criteria))

    def aliases_for(self, index: int) -> tuple[str, ...]:
        return self.aliases[index] if self.aliases else ()


SEVEN_ASPECT = ReviewSchema(
    name="7-aspect",
    criteria=(
        "How to evaluate the idea of the paper",
        "Compared to previous similar works, what are the essential differences, such as any "
        "fundamental differences, improvements, innovations",
        "How to evaluate the experimental results in the paper",
        "Potential reasons for acceptance",
        "Potential reasons for rejection",
        "Other suggestions for further improving the quality of the paper",
        "Other important review comments",
    ),
    system_prompt=SEVEN_ASPECT_PROMPT,
    aliases=(
        ("idea", "evaluation of the idea", "summary of the idea", "main idea"),
        ("comparison to previous works", "comparison with previous work", "novelty",
         "essential differences", "related work", "compared to previous similar works"),
        ("experimental results", "experiments", "evaluation of the experimental results",
         "evaluation of experiments"),
        ("reasons for acceptance", "strengths", "pros"),
        ("reasons for rejection", "weaknesses", "cons"),
        ("suggestions for improvement", "suggestions", "other suggestions"),
        ("other comments", "additional comments", "other review comments", "minor comments"),
    ),
)

FOUR_ASPECT = ReviewSchema(
    name="4-aspect",
    criteria=(
        "Significance and novelty",
        "Potential reasons for acceptance",
        "Potential reasons for rejection",
        "Suggestions for improvement",
    ),
    system_prompt=FOUR_ASPECT_PROMPT,
    aliases=(
        ("significance", "novelty", "originality", "significance & novelty"),
        ("reasons for acceptance", "strengths", "pros"),
        ("reasons for rejection", "weaknesses", "cons"),
        ("suggestions", "other suggestions", "improvements", "suggestions for further improvement"),
    ),
)

SCHEMAS: dict[str, ReviewSchema] = {"7": SEVEN_ASPECT, "4": FOUR_ASPECT}


def get_schema(name: str | int | ReviewSchema) -> ReviewSchema:
    """Look a schema up by '4', '7', 4, 7, '4-aspect' or '7-aspect'."""
    if isinstance(name, ReviewSchema):
        return name
    key = str(name).split("-")[0].strip()
    try:
        return SCHEMAS[key]
    except KeyError:
        raise ValueError(f"unknown review schema {name!r}; use 4 or 7") from None
