"""Both local reviewers (the engine in this process, the served one) are `Reviewer`s: what the app and
eval call on them is there, with the arguments they pass."""

import inspect

from app.settings import AppSettings
from reviewgpt.config import GenerationConfig
from reviewgpt.generate.engine import get_engine
from reviewgpt.remote.served_reviewer import ServedConfig, ServedReviewer
from reviewgpt.reviewer import Reviewer, ReviewerInfo, ReviewerLimits

from .support.openai_server import API_KEY


def _calls_bind(reviewer) -> None:
    """The calls of app/service.py, app/gpu.py and eval's runners bind to the methods' signatures."""
    gen = GenerationConfig()
    inspect.signature(reviewer.prepare).bind("Title: T\n\nText.", "4", edited=False)
    inspect.signature(reviewer.stream).bind("text", "4", gen, stop=None)
    inspect.signature(reviewer.generate).bind("text", "4", gen)
    inspect.signature(reviewer.generate_batch).bind(["a", "b"], "4", gen)
    if reviewer.records_markers:  # app/gpu.py hands it a MarkerProbe
        inspect.signature(reviewer.stream).bind("text", "4", gen, stop=None, probe=None)


def test_the_engine_and_the_served_reviewer_are_reviewers(model_dirs, openai_server):
    engine = get_engine(AppSettings(demo=True).engine_config())  # the bundled demo model, as the app loads it
    served = ServedReviewer(ServedConfig(base_url=openai_server.base_url, model="reviewer",
                                         tokenizer=str(model_dirs / "base"), api_key=API_KEY))
    for reviewer in (engine, served):
        assert isinstance(reviewer, Reviewer), type(reviewer)
        assert isinstance(reviewer.info, ReviewerInfo) and isinstance(reviewer.config, ReviewerLimits)
        assert isinstance(reviewer.records_markers, bool) and isinstance(reviewer.info.describe(), str)
        _calls_bind(reviewer)
    # the engine fills a MarkerProbe as it decodes; a server returns text only
    assert engine.records_markers is True and served.records_markers is False
    assert not isinstance(object(), Reviewer)
