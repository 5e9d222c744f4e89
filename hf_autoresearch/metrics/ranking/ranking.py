"""Ranking quality of a reranker: each query's judged documents ordered by the model's scores, scored by trec_eval
(pytrec_eval, the reference implementation of TREC's measures).

Inputs: `predictions` the model's score of each judged (query, document) pair, `references` its integer gain,
`query_ids` the pair's query (the predictor passes them). Every query's judged documents are ranked by score.

- ndcg@10 (decides), ndcg@5: normalised discounted cumulative gain with **linear** gains (Järvelin & Kekäläinen:
  DCG = sum gain_i / log2(i + 1), trec_eval's ndcg_cut; not the exponential 2^gain - 1 of Burges et al.), divided
  by the DCG of the ideal order of the same judged documents.
- mrr@10: reciprocal rank of the first relevant document in the top 10 (0 when none is there).
- map: mean average precision over all judged documents.
  A document is relevant for mrr and map when its gain is at least the option `relevant_gain` (default 1).
- num_queries: the queries scored; uninformative_queries: queries left out of every mean because all their judged
  documents share one gain (every order of them scores the same, so they measure nothing about the ranking).
- random_ndcg@10: the expected nDCG@10 of a random order of the same queries (the mean of 20 seeded shuffles).

Ties between scores are broken pessimistically (the lower gain first), so a model that gives every document the
same score earns the worst order, not the source's order.
"""

import datasets
import evaluate
import numpy as np

METRICS = ("ndcg@10", "ndcg@5", "mrr@10", "map")
RANDOM_SHUFFLES = 20


class Ranking(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions: scores; references: integer gains; query_ids: each pair's query",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, query_ids=None, relevant_gain=1):
        if query_ids is None or len(query_ids) != len(predictions):
            raise ValueError("ranking needs query_ids: one query id per (query, document) pair")
        queries: dict[str, list[int]] = {}
        for i, q in enumerate(query_ids):
            queries.setdefault(str(q), []).append(i)
        gains = np.asarray(references, dtype=np.int64)
        scores = np.asarray(predictions, dtype=float)
        if (gains < 0).any():
            raise ValueError("gains must be >= 0")
        informative = {q: ix for q, ix in queries.items() if len(set(gains[ix].tolist())) > 1}
        result = {
            "num_queries": len(informative),
            "uninformative_queries": len(queries) - len(informative),
        }
        if not informative:
            return {**{m: float("nan") for m in METRICS}, **result, "random_ndcg@10": float("nan")}
        result = {**trec_scores(informative, gains, scores, relevant_gain), **result}
        rng = np.random.default_rng(0)
        shuffles = [
            trec_scores(informative, gains, rng.random(len(scores)), relevant_gain, ("ndcg@10",))["ndcg@10"]
            for _ in range(RANDOM_SHUFFLES)
        ]
        result["random_ndcg@10"] = float(np.mean(shuffles))
        return result


def trec_scores(queries: dict, gains, scores, relevant_gain: int = 1, metrics=METRICS) -> dict:
    """trec_eval's (pytrec_eval) mean of `metrics` over `queries` ({query: row indices}), ties broken
    pessimistically; mrr@10 is trec_eval's recip_rank on each query's top 10 (as ir_measures computes RR@10)."""
    import pytrec_eval

    qrels, run, top10 = {}, {}, {}
    for q, ix in queries.items():
        # rank positions, not raw scores: ties (equal scores) ordered lowest gain first
        order = sorted(ix, key=lambda i: (-scores[i], gains[i], i))
        qrels[q] = {f"d{i}": int(gains[i]) for i in ix}
        run[q] = {f"d{i}": float(len(order) - rank) for rank, i in enumerate(order)}
        top10[q] = {f"d{i}": float(len(order) - rank) for rank, i in enumerate(order[:10])}
    wanted = {"ndcg@10": "ndcg_cut_10", "ndcg@5": "ndcg_cut_5", "map": "map"}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.5,10", "map"}, relevance_level=int(relevant_gain))
    evaluated = per_query.evaluate(run)
    out = {m: float(np.mean([evaluated[q][wanted[m]] for q in queries])) for m in metrics if m in wanted}
    if "mrr@10" in metrics:
        reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=int(relevant_gain))
        ranked = reciprocal.evaluate(top10)
        out["mrr@10"] = float(np.mean([ranked[q]["recip_rank"] if q in ranked else 0.0 for q in queries]))
    return {m: out[m] for m in metrics}
