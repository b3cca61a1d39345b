"""The rating model on disk: assets/rating-model/ holds model.joblib (the fitted scikit-learn
objects), metrics.json (version, library versions, held-out figures) and data.json (the files it
was fitted on, by sha256). The app loads it from the repository alone, no shared data needed."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import joblib
import sklearn

from reviewgpt.rating.model import RatingModel

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "assets" / "rating-model"
VERSION = "iclr2017-v2"  # bump when the features, learners or data change


class ArtifactError(RuntimeError):
    pass


def save(model: RatingModel, out_dir: str | Path, metrics: dict[str, Any], data: dict[str, Any]) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib", compress=("zlib", 3))  # xz is 20% smaller, 50% slower to load
    (out / "metrics.json").write_text(json.dumps({"version": VERSION, "scikit_learn": sklearn.__version__,
                                                  **metrics}, indent=2) + "\n")
    (out / "data.json").write_text(json.dumps(data, indent=1) + "\n")
    return out


def read_metrics(model_dir: str | Path = DEFAULT_DIR) -> dict[str, Any]:
    return json.loads((Path(model_dir) / "metrics.json").read_text())


def load(model_dir: str | Path = DEFAULT_DIR) -> RatingModel:
    """The fitted model; a clear error when it is missing or was saved by another scikit-learn."""
    d = Path(model_dir)
    if not (d / "model.joblib").exists():
        raise ArtifactError(f"no rating model in {d}: build it with `python -m train.rating`")
    try:
        saved = read_metrics(d).get("scikit_learn", "")
    except (OSError, ValueError) as e:
        raise ArtifactError(f"cannot read {d / 'metrics.json'} ({e}): rebuild it with `python -m train.rating`") from e
    if saved.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise ArtifactError(f"the rating model in {d} was saved with scikit-learn {saved}, this is "
                            f"{sklearn.__version__}: install scikit-learn=={saved} or rebuild it "
                            "(`python -m train.rating`)")
    try:
        model = joblib.load(d / "model.joblib")
    except ImportError:
        raise
    except Exception as e:  # cut short, a Git LFS pointer, another file: unpickling fails in many ways
        raise ArtifactError(f"cannot load {d / 'model.joblib'} ({type(e).__name__}: {e}): fetch the file "
                            "again (e.g. `git lfs pull`) or rebuild it with `python -m train.rating`") from e
    if not isinstance(model, RatingModel):
        raise ArtifactError(f"{d / 'model.joblib'} is not a rating model")
    return model


@lru_cache(maxsize=4)
def default_model(model_dir: str = str(DEFAULT_DIR)) -> RatingModel:
    """Loaded once per process (the app, the API, eval)."""
    return load(model_dir)
