"""Failure families: failed task runs whose error messages say the same thing, across workflows.

1. Normalise every final error message (:func:`analytics.signatures.error_signature`: uuids,
   timestamps, urls, IPs, hosts, quoted values, paths, hex ids and numbers masked); identical
   normalised messages collapse, so the work below depends on the distinct messages, not the runs.
2. A message equal to an exemplar of a known family (the stored model) joins it at once.
3. The others -- at most ``family_max_messages``, the most frequent -- are embedded with TF-IDF
   (word 1-2 grams and character 3-5 grams, each half of the vector) and clustered by
   agglomerative clustering, average linkage on cosine distance: clusters merge while their mean
   pairwise distance is below ``family_distance_threshold`` (0.5: variants of one message that
   differ in a word stay near 0.1-0.3; two messages built on one template but saying different
   things -- ``HTTPError: <n> Service Unavailable for url <url>`` and ``... Too Many Requests
   ...`` -- sit near 0.55, unrelated errors near 1). Different exception types never merge.
   The next ``3 * family_max_messages`` messages join the nearest cluster within the threshold;
   those near none, and rarer ones still, are counted (``ungrouped_failures``) but belong to no
   family: they are the rarest of the window.
4. Each cluster joins the nearest known family within the threshold (same exception type), or
   becomes a new family.

A family's signature is its most common normalised message in the window; its ``id`` stays the
same from report to report.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from analytics.config import AnalysisConfig
from analytics.frames import epoch_to_timestamp
from analytics.learning_model import FAMILY, FailureFamily, FamilySection, KnownFamily, LearnedModels
from analytics.signatures import signatures

_WORD_TOKENS = r"<\w+>|[A-Za-z_][A-Za-z0-9_]+"
_EXCEPTION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*:")
_TERMS = 6
_MAX_PLACES = 50  # workflows and tasks a known family remembers
_CHUNK = 1000
# Beyond the messages clustered, this many times as many rarer ones are matched to the clusters.
_TAIL_FACTOR = 4


def exception_type(normalised: str) -> str | None:
    """The exception class a message starts with (``requests.exceptions.ConnectionError: ...`` ->
    ``ConnectionError``), or None."""
    match = _EXCEPTION.match(normalised)
    if not match:
        return None
    name = match.group(1).rsplit(".", 1)[-1]
    return name if name[:1].isupper() else None


@dataclass
class _Embedding:
    word: TfidfVectorizer
    char: TfidfVectorizer

    @classmethod
    def fit(cls, texts: list[str]) -> _Embedding | None:
        """TF-IDF fitted on ``texts``; None when there is nothing to embed."""
        word = TfidfVectorizer(token_pattern=_WORD_TOKENS, ngram_range=(1, 2), sublinear_tf=True)
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        try:
            word.fit(texts)
            char.fit(texts)
        except ValueError:  # empty vocabulary: nothing but punctuation
            return None
        return cls(word, char)

    def vectors(self, texts: list[str]) -> sp.csr_matrix:
        """Unit vectors, half words, half characters."""
        if not texts:
            width = len(self.word.vocabulary_) + len(self.char.vocabulary_)
            return sp.csr_matrix((0, width))
        return normalize(sp.hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr())

    @property
    def words(self) -> npt.NDArray[np.object_]:
        names: npt.NDArray[np.object_] = self.word.get_feature_names_out().astype(object)
        return names


def _centroids(vectors: sp.csr_matrix, members: list[list[int]]) -> sp.csr_matrix:
    """One unit-length mean vector per group of rows (sparse)."""
    rows = np.concatenate([np.full(len(m), k) for k, m in enumerate(members)]) if members else np.zeros(0)
    cols = np.concatenate([np.asarray(m, dtype=np.int64) for m in members]) if members else np.zeros(0)
    membership = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(len(members), vectors.shape[0]))
    sums = (membership @ vectors).tocsr()
    return normalize(sums) if sums.shape[0] else sums


def _terms(centroid: sp.csr_matrix, words: npt.NDArray[np.object_]) -> list[str]:
    row = centroid.tocoo()
    keep = row.col < words.size
    order = np.argsort(-row.data[keep], kind="stable")
    picked = [str(words[i]) for i in row.col[keep][order] if not str(words[i]).startswith("<")]
    return picked[:_TERMS]


def _cluster(vectors: sp.csr_matrix, types: list[str | None], threshold: float) -> npt.NDArray[np.int64]:
    n = vectors.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    distance = np.clip(1.0 - (vectors @ vectors.T).toarray(), 0.0, 1.0)
    codes = pd.factorize(pd.Series(types, dtype=object), use_na_sentinel=False)[0]
    distance[codes[:, None] != codes[None, :]] = 1.0
    np.fill_diagonal(distance, 0.0)
    model = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
    )
    labels: npt.NDArray[np.int64] = model.fit(distance).labels_.astype(np.int64)
    return labels


def _family_id(signature: str, taken: Collection[str]) -> str:
    digest = hashlib.sha1(signature.encode()).hexdigest()
    for width in range(10, 41):
        candidate = f"fam-{digest[:width]}"
        if candidate not in taken:
            return candidate
    return f"fam-{digest}-{len(taken)}"


@dataclass
class _Message:
    text: str
    count: int
    type: str | None
    family: str | None = None  # the known family an exemplar matched


@dataclass
class _Cluster:
    messages: list[_Message]
    joins: str | None  # the known family it is close to
    terms: list[str]


def _nearest(
    vectors: sp.csr_matrix,
    types: list[str | None],
    centroids: sp.csr_matrix,
    centroid_types: list[str | None],
    threshold: float,
) -> npt.NDArray[np.int64]:
    """For each vector, the centroid (row) nearest within the threshold with the same exception
    type, else -1. Works in chunks so that memory stays bounded."""
    out = np.full(vectors.shape[0], -1, dtype=np.int64)
    if centroids.shape[0] == 0:
        return out
    codes = pd.factorize(pd.Series([*types, *centroid_types], dtype=object), use_na_sentinel=False)[0]
    mine, theirs = codes[: len(types)], codes[len(types) :]
    for lo in range(0, vectors.shape[0], _CHUNK):
        similarity = (vectors[lo : lo + _CHUNK] @ centroids.T).toarray()
        similarity[mine[lo : lo + _CHUNK, None] != theirs[None, :]] = -1.0
        best = similarity.argmax(axis=1)
        close = 1.0 - similarity[np.arange(best.size), best] < threshold
        out[lo : lo + _CHUNK] = np.where(close, best, -1)
    return out


def _cluster_unknown(
    unknown: list[_Message], known: Mapping[str, KnownFamily], config: AnalysisConfig
) -> list[_Cluster]:
    """Cluster the most frequent messages no exemplar matched, add rarer ones to their nearest
    cluster (those near none are left out), and find the known family each cluster is close to."""
    if not unknown:
        return []
    cap = config.family_max_messages
    head, tail = unknown[:cap], unknown[cap : cap * _TAIL_FACTOR]
    families = [f for f in known.values() if f.exemplars]
    exemplars = [e for f in families for e in f.exemplars]
    embedding = _Embedding.fit([m.text for m in head] + exemplars)
    if embedding is None:
        return [_Cluster([m], None, []) for m in head]
    threshold = config.family_distance_threshold
    vectors = embedding.vectors([m.text for m in head])
    labels = _cluster(vectors, [m.type for m in head], threshold)
    members: list[list[int]] = [list(np.flatnonzero(labels == k)) for k in range(int(labels.max()) + 1)]
    types = [head[rows[0]].type for rows in members]
    if tail:
        tail_vectors = embedding.vectors([m.text for m in tail])
        nearest = _nearest(
            tail_vectors, [m.type for m in tail], _centroids(vectors, members), types, threshold
        )
        for j, k in enumerate(nearest):
            if k >= 0:
                members[int(k)].append(len(head) + j)
        head = head + tail
        vectors = sp.vstack([vectors, tail_vectors]).tocsr()
    centroids = _centroids(vectors, members)
    known_vectors = embedding.vectors(exemplars)
    spans = np.cumsum([0, *(len(f.exemplars) for f in families)])
    spans_of = [list(range(a, b)) for a, b in itertools.pairwise(spans)]
    known_centroids = _centroids(known_vectors, spans_of)
    joins = _nearest(centroids, types, known_centroids, [f.exception_type for f in families], threshold)
    words = embedding.words
    return [
        _Cluster(
            messages=[head[i] for i in rows],
            joins=families[int(k)].id if k >= 0 else None,
            terms=_terms(centroids[g], words),
        )
        for g, (rows, k) in enumerate(zip(members, joins, strict=True))
    ]


def _assign(
    messages: list[_Message], models: LearnedModels, config: AnalysisConfig
) -> tuple[dict[str, str], dict[str, list[str]], int]:
    """Normalised message -> family id; family id -> centroid terms learnt now; messages clustered."""
    known = models.families
    exemplars = {e: f.id for f in known.values() for e in f.exemplars}
    for message in messages:
        message.family = exemplars.get(message.text)
    unknown = [m for m in messages if m.family is None]
    clusters = _cluster_unknown(unknown, known, config)
    assignment: dict[str, str] = {m.text: m.family for m in messages if m.family is not None}
    terms: dict[str, list[str]] = {}
    taken: set[str] = set(known)
    # Biggest clusters first: a family's terms are those of its largest cluster.
    for cluster in sorted(clusters, key=lambda c: -sum(m.count for m in c.messages)):
        family = cluster.joins
        if family is None:
            family = _family_id(max(cluster.messages, key=lambda m: m.count).text, taken)
            taken.add(family)
        for message in cluster.messages:
            assignment[message.text] = family
        terms.setdefault(family, cluster.terms)
    return assignment, terms, min(len(unknown), config.family_max_messages)


def _trend(earlier: int, recent: int, is_new: bool) -> str:
    if is_new and earlier == 0:
        return "new"
    if recent >= 2 * earlier and recent - earlier >= 3:
        return "rising"
    if earlier >= 2 * recent and earlier - recent >= 3:
        return "falling"
    return "steady"


def _bound(values: list[float | None], pick: Callable[[list[float]], float]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return pick(finite) if finite else None


def _stamp(seconds: float | None) -> pd.Timestamp | None:
    return epoch_to_timestamp(seconds) if seconds is not None and math.isfinite(seconds) else None


def _places(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    workflows = sorted(rows["workflow"].astype(str).unique().tolist())
    pairs = rows[["workflow", "task_id"]].astype(str).drop_duplicates()
    tasks = sorted(f"{w}/{t}" for w, t in pairs.itertuples(index=False))
    return workflows, tasks


def _family(
    fid: str,
    rows: pd.DataFrame,
    flow_run_ids: npt.NDArray[np.object_],
    models: LearnedModels,
    terms: list[str] | None,
    middle: float,
    config: AnalysisConfig,
) -> FailureFamily:
    prior = models.families.get(fid)
    forms = rows["norm"].value_counts()
    ordered = rows.sort_values("moment", ascending=False, kind="stable")
    runs = pd.unique(flow_run_ids[ordered["run_code"].to_numpy()])
    moments = rows["moment"].to_numpy(dtype=np.float64)
    first = _bound([*moments, prior.first_seen if prior else None], min)
    last = _bound([*moments, prior.last_seen if prior else None], max)
    workflows, tasks = _places(rows)
    signature = str(forms.index[0])
    exemplars = list(dict.fromkeys([*map(str, forms.index), *(prior.exemplars if prior else [])]))
    learnt = KnownFamily(
        id=fid,
        signature=prior.signature if prior else signature,
        exception_type=exception_type(signature),
        exemplars=exemplars[: config.family_max_exemplars],
        terms=terms if terms else (prior.terms if prior else []),
        first_seen=first,
        last_seen=last,
        workflows=sorted({*workflows, *(prior.workflows if prior else [])})[:_MAX_PLACES],
        tasks=sorted({*tasks, *(prior.tasks if prior else [])})[:_MAX_PLACES],
    )
    ref = models.update(FAMILY, fid, learnt)
    earlier = int((moments < middle).sum())
    recent = int(rows.shape[0] - earlier)
    example = ordered["message"].iloc[0]
    return FailureFamily(
        signature=signature,
        count=int(rows.shape[0]),
        example="" if example is None else str(example),
        workflows=workflows,
        tasks=tasks,
        first_seen=_stamp(first),
        last_seen=_stamp(last),
        flow_run_ids=[str(r) for r in runs[: config.family_max_listed_runs]],
        id=fid,
        exception_type=learnt.exception_type,
        flow_runs=int(runs.size),
        variants=int(forms.size),
        trend=_trend(earlier, recent, prior is None),
        earlier=earlier,
        recent=recent,
        new=prior is None,
        centroid_terms=learnt.terms,
        model=ref,
    )


def learn_families(
    failed: pd.DataFrame,
    flow_run_ids: npt.NDArray[np.object_],
    models: LearnedModels,
    *,
    window: tuple[float, float],
    config: AnalysisConfig,
) -> FamilySection:
    """Families of the failed task runs (prepared rows) in the window ``(start, end)`` (epoch
    seconds); known families come from ``models``, which is updated in place."""
    frame = pd.DataFrame(
        {
            "norm": signatures(failed["error_message"]),
            "message": failed["error_message"].to_numpy(dtype=object),
            "workflow": failed["workflow"].to_numpy(dtype=object),
            "task_id": failed["task_id"].to_numpy(dtype=object),
            "run_code": failed["run_code"].to_numpy(dtype=np.int64),
            "moment": failed["t_end"].fillna(failed["t_start"]).to_numpy(dtype=np.float64),
        }
    )
    threshold = config.family_distance_threshold
    if frame.empty:
        return FamilySection([], threshold, 0, 0, 0)
    counts = frame["norm"].value_counts()
    messages = [_Message(str(text), int(n), exception_type(str(text))) for text, n in counts.items()]
    assignment, terms, clustered = _assign(messages, models, config)
    frame["family"] = frame["norm"].map(assignment)
    middle = (window[0] + window[1]) / 2
    families = [
        _family(str(fid), rows, flow_run_ids, models, terms.get(str(fid)), middle, config)
        for fid, rows in frame.groupby("family", sort=True)
    ]
    _forget_oldest(models, config.family_max_known)
    families.sort(key=lambda f: (-f.count, f.signature))
    ungrouped = int(frame["family"].isna().sum())
    return FamilySection(families, threshold, len(messages), clustered, ungrouped)


def _forget_oldest(models: LearnedModels, limit: int) -> None:
    """Keep the ``limit`` most recently seen families (the model stays bounded)."""
    if len(models.families) <= limit:
        return
    by_age = sorted(models.families.values(), key=lambda f: f.last_seen or 0.0, reverse=True)
    for family in by_age[limit:]:
        models.forget(FAMILY, family.id)
