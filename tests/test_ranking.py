"""The ranking task: the metric against a second implementation, query-grouped splits (ESCI's schema, real
CrowdFlower and Home Depot rows), the frozen predictor, and a recipe written by `init --task ranking` that runs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SHARED, git, write_csv
from sklearn.metrics import average_precision_score, ndcg_score

from hf_autoresearch.classical import bm25, random_order
from hf_autoresearch.data import DataError
from hf_autoresearch.evaluation import compute_metric
from hf_autoresearch.metrics import load_metric
from hf_autoresearch.recipe import DataConfig, RecipeError, load_recipe
from hf_autoresearch.tasks import get_task, prepare_splits

CROWDFLOWER = SHARED / "data" / "search-relevance" / "crowdflower"
HOMEDEPOT = SHARED / "data" / "search-relevance" / "homedepot"
RECIPE = ROOT / "recipes" / "search-ranking"


def compute(scores, gains, queries, **options):
    metric = load_metric("ranking")
    return metric.compute(predictions=scores, references=gains, query_ids=queries, **options)


def random_judgments(seed: int, n_queries: int = 30):
    rng = np.random.default_rng(seed)
    scores, gains, queries = [], [], []
    for q in range(n_queries):
        n = int(rng.integers(3, 25))
        g = rng.integers(0, 4, n)
        g[0], g[1] = 0, 3  # at least two gains: every query is informative
        gains += g.tolist()
        scores += (g * 0.3 + rng.random(n)).tolist()  # informative but noisy, no ties
        queries += [f"q{q}"] * n
    return scores, gains, queries


def by_query(values, queries):
    out: dict[str, list] = {}
    for v, q in zip(values, queries, strict=True):
        out.setdefault(q, []).append(v)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_metric_matches_a_second_implementation(seed):
    scores, gains, queries = random_judgments(seed)
    result = compute(scores, gains, queries, relevant_gain=2)
    s, g = by_query(scores, queries), by_query(gains, queries)
    # nDCG: scikit-learn's ndcg_score (linear gains, log2 discount), per query, then the mean
    for k in (10, 5):
        expected = np.mean([ndcg_score([g[q]], [s[q]], k=k) for q in s])
        assert result[f"ndcg@{k}"] == pytest.approx(expected, abs=1e-9)
    # MAP: scikit-learn's average precision of the relevant (gain >= 2) documents, per query
    expected_map = np.mean([average_precision_score(np.array(g[q]) >= 2, s[q]) for q in s])
    assert result["map"] == pytest.approx(expected_map, abs=1e-9)
    # MRR@10 by its definition: 1 / the rank of the first relevant document in the top 10, else 0
    reciprocal = []
    for q in s:
        ranked = [g[q][i] for i in np.argsort(-np.array(s[q]))[:10]]
        first = next((rank for rank, gain in enumerate(ranked, 1) if gain >= 2), None)
        reciprocal.append(1 / first if first else 0.0)
    assert result["mrr@10"] == pytest.approx(np.mean(reciprocal), abs=1e-9)
    assert result["num_queries"] == 30 and result["uninformative_queries"] == 0
    assert result["random_ndcg@10"] < result["ndcg@10"]


def test_known_values_uninformative_queries_and_ties():
    # one query: gains 2, 0, 1 scored so that the order is 0, 1, 2 -> DCG = 1/log2(3) + 2/log2(4)
    result = compute([0.1, 0.9, 0.5], [2, 0, 1], ["a", "a", "a"])
    assert result["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1) / (2 + 1 / np.log2(3)))
    assert result["mrr@10"] == 0.5 and result["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # a query whose documents share one gain measures nothing: left out of every mean, and counted
    with_flat = compute([0.1, 0.9, 0.5, 3, 2, 1], [2, 0, 1, 1, 1, 1], ["a", "a", "a", "b", "b", "b"])
    assert with_flat["ndcg@10"] == result["ndcg@10"]
    assert with_flat["num_queries"] == 1 and with_flat["uninformative_queries"] == 1
    # equal scores earn the worst order, not the order the rows came in
    best_first = [3, 2, 1, 0]
    tied = compute([0.5] * 4, best_first, ["a"] * 4)
    worst = compute([0, 1, 2, 3], best_first, ["a"] * 4)
    assert tied["ndcg@10"] == worst["ndcg@10"] < 1
    with pytest.raises(ValueError, match="ranking needs query_ids"):
        load_metric("ranking").compute(predictions=[0.1], references=[1])


def esci_rows(n_queries: int, split: str, rng) -> list[dict]:
    """Rows in tasksource/esci's schema (a few columns it has beside these are left out)."""
    labels = ["Exact", "Substitute", "Complement", "Irrelevant"]
    rows = []
    for q in range(n_queries):
        for d in range(6):
            rows.append(
                {
                    "example_id": len(rows),
                    "query": f"{split} query {q}" if q % 5 else f"Shared Query {q}!",  # some in both splits
                    "query_id": q,
                    "product_id": f"B{q:03d}{d}",
                    "product_locale": "us" if d != 5 else "jp",
                    "esci_label": labels[int(rng.integers(0, 4))] if d > 1 else labels[d * 3],
                    "small_version": 1 if q < n_queries - 2 else 0,
                    "large_version": 1,
                    "product_title": f"product {d} <b>title</b>",
                    "product_text": f"text of product {d} &amp; more" if d != 2 else None,
                }
            )
    return rows


def test_esci_schema_splits_by_query_with_its_test_split_as_holdout(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "esci"
    write_csv(esci_rows(40, "train", rng), folder / "train.csv")
    write_csv(esci_rows(15, "test", rng), folder / "test.csv")
    data = load_recipe(RECIPE).data  # the recipe's own reading of ESCI: columns, gains, locale, small version
    splits = prepare_splits("ranking", str(folder), data)
    queries = {name: {r["query_id"] for r in rows} for name, rows in vars(splits).items() if name != "labels"}
    assert (
        not (queries["train"] & queries["selection"])
        and not (queries["train"] | queries["selection"]) & queries["holdout"]
    )
    # the holdout is the source's test split: its small-version queries (13 of 15), English rows only
    assert len(queries["holdout"]) == 13 and len(splits.holdout) == 13 * 5
    # "Shared Query 0!" is in test, so train's "shared query 0" judgments are dropped (normalised query)
    assert "shared query 0" in queries["holdout"] and "shared query 0" not in queries["train"] | queries["selection"]
    gains = {r["gain"] for rows in (splits.train, splits.holdout) for r in rows}
    assert gains <= {0, 1, 2, 3} and 3 in gains and 0 in gains
    row = splits.train[0]
    assert set(row) == {"query_id", "query", "document", "gain"}
    assert row["document"] == "product 0 title | text of product 0 & more"  # HTML gone, both columns
    assert any(r["document"] == "product 2 title" for r in splits.train)  # an empty text column is skipped
    # max_queries caps every split's queries
    data.max_queries = 5
    capped = prepare_splits("ranking", str(folder), data)
    assert all(len({r["query_id"] for r in rows}) <= 5 for rows in (capped.train, capped.selection, capped.holdout))


def test_bad_ranking_data_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "esci"
    write_csv(esci_rows(12, "train", rng), folder / "train.csv")
    data = load_recipe(RECIPE).data
    data.document_columns = ["product_title", "product_description"]
    with pytest.raises(DataError, match=r"no column 'product_description' .*data\.document_columns"):
        prepare_splits("ranking", str(folder), data)
    data = load_recipe(RECIPE).data
    data.gains = {}
    with pytest.raises(DataError, match=r"esci_label 'Exact' is not a number; map the labels to integer gains"):
        prepare_splits("ranking", str(folder), data)
    data.gains = {"Exact": 3, "Substitute": 2, "Irrelevant": 0}
    with pytest.raises(DataError, match=r"esci_label 'Complement' has no gain in data\.gains"):
        prepare_splits("ranking", str(folder), data)


def crowdflower_data() -> DataConfig:
    if not (CROWDFLOWER / "train.csv").is_file():
        pytest.skip(f"real data not found at {CROWDFLOWER}")
    return load_recipe(RECIPE).data.with_profile("crowdflower")


def test_crowdflower_through_the_recipes_profile():
    splits = prepare_splits("ranking", str(CROWDFLOWER), crowdflower_data())
    queries = [{r["query_id"] for r in rows} for rows in (splits.train, splits.selection, splits.holdout)]
    assert [len(q) for q in queries] == [167, 42, 52]  # 261 queries, a fifth held out, a fifth of the rest selects
    assert sum(len(rows) for rows in (splits.train, splits.selection, splits.holdout)) == 10158
    assert not (queries[0] & queries[1]) and not (queries[0] | queries[1]) & queries[2]
    assert {r["gain"] for r in splits.train} == {0, 1, 2, 3}  # grades 1-4 as gains 0-3
    assert not any("<br" in r["document"] or "&amp;" in r["document"] for r in splits.train)
    # the classical lines on the real holdout: BM25 well above a random order, with the same frozen metric
    metric = load_metric("ranking")
    scored = {
        name: compute_metric(metric, f(splits.holdout), {"relevant_gain": 2}, [])
        for name, f in (("bm25", bm25), ("random", random_order))
    }
    assert scored["bm25"]["num_queries"] == 52
    assert scored["bm25"]["ndcg@10"] > 0.8 > scored["random"]["ndcg@10"] > 0.7
    assert scored["bm25"]["random_ndcg@10"] == pytest.approx(0.76, abs=0.01)


def test_home_depot_reads_with_its_encoding_and_fails_without(tmp_path):
    if not (HOMEDEPOT / "train.csv").is_file():
        pytest.skip(f"real data not found at {HOMEDEPOT}")
    with (HOMEDEPOT / "train.csv").open("rb") as f:
        head = b"".join(f.readline() for _ in range(3000))  # real rows, latin-1 among them
    (tmp_path / "hd").mkdir()
    (tmp_path / "hd" / "train.csv").write_bytes(head)
    data = DataConfig(
        source="hd", query_column="search_term", document_columns=["product_title"], label_column="relevance"
    )
    with pytest.raises(DataError, match=r"is not UTF-8: byte 0x.. at column .*data\.encoding = \"latin-1\""):
        prepare_splits("ranking", str(tmp_path / "hd"), data)
    data.encoding = "latin-1"
    with pytest.raises(DataError, match=r"row 2: relevance 2\.5 is not a whole number"):
        prepare_splits("ranking", str(tmp_path / "hd"), data)  # read: now the grades are the problem
    grades = sorted({r["relevance"] for r in csv.DictReader((tmp_path / "hd" / "train.csv").open(encoding="latin-1"))})
    data.gains = {g: round((float(g) - 1) * 3) for g in grades}  # means of 3 raters, 1-3 -> 0-6
    splits = prepare_splits("ranking", str(tmp_path / "hd"), data)
    texts = [r["query"] + r["document"] for r in splits.train + splits.selection + splits.holdout]
    assert len(texts) == 2999 and any(not t.isascii() for t in texts)  # every row, the latin-1 ones decoded


def test_the_predictor_scores_every_pair_with_a_one_output_model(tiny_bert, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = tmp_path / "reranker"
    AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=1).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(model_dir)
    rows = [
        {"query_id": q, "query": q, "document": f"card {d} arrived late", "gain": d % 3}
        for q in ("card", "pin")
        for d in range(5)
    ]
    task = get_task("ranking")
    out = task.load_predictor(model_dir, tmp_path, "cpu")(rows)
    assert len(out.predictions) == 10 and len(set(out.predictions)) > 1
    assert out.references == [r["gain"] for r in rows] and out.groups == [r["query_id"] for r in rows]
    result = compute_metric(load_metric("ranking"), out, {}, [])
    assert result["num_queries"] == 2 and 0 < result["ndcg@10"] <= 1
    AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3).save_pretrained(model_dir)
    with pytest.raises(ValueError, match="a reranker needs one"):
        task.load_predictor(model_dir, tmp_path, "cpu")


def test_data_profiles_are_checked(tmp_path):
    recipe = tmp_path / "search-ranking"
    shutil.copytree(RECIPE, recipe)
    assert load_recipe(recipe).data.with_profile("crowdflower").label_column == "median_relevance"
    with pytest.raises(RecipeError, match=r"no data profile 'kaggle' .*known: crowdflower"):
        load_recipe(recipe).data.with_profile("kaggle")
    toml = (recipe / "recipe.toml").read_text()
    (recipe / "recipe.toml").write_text(
        toml.replace("[data.profiles.crowdflower]\n", '[data.profiles.crowdflower]\nsource = "x"\n')
    )
    with pytest.raises(RecipeError, match=r"data\.profiles\.crowdflower\.source: a profile cannot set source"):
        load_recipe(recipe)
    (recipe / "recipe.toml").write_text(toml.replace("max_queries = 0\n", 'max_queries = "all"\n'))
    with pytest.raises(RecipeError, match=r"data\.profiles\.crowdflower\.max_queries must be int"):
        load_recipe(recipe)
    (recipe / "recipe.toml").write_text(toml.replace('"4" = 3}', '"4" = 2.5}'))
    with pytest.raises(RecipeError, match=r"data\.gains: 4 = 2\.5; gains are integers >= 0"):
        load_recipe(recipe)


@pytest.mark.slow
def test_init_ranking_writes_a_recipe_that_runs_with_the_package_unchanged(tiny_bert, tmp_path, capsys):
    """A source with its own column names (search / title / bullets / stars) -> a recipe -> a baseline experiment."""
    from test_tasks import commit_all, package_state

    from hf_autoresearch.cli import main
    from hf_autoresearch.ledger import Ledger

    before = package_state()
    rng = np.random.default_rng(0)
    rows = [
        {
            "search": f"query {q}",
            "title": ["query {q}, query {q}", "item for query {q}", "a query {q} item"][d].format(q=q)
            if d < 3
            else f"other {d}",
            "bullets": "",
            "stars": int(d < 3) + int(d == 0),
        }
        for q in range(30)
        for d in range(int(rng.integers(4, 8)))
    ]
    write_csv(rows, tmp_path / "shop" / "train.csv")
    repo = tmp_path / "project"
    repo.mkdir()
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    folder = repo / "recipes" / "shop-ranking"
    args = ["init", str(folder), "--task", "ranking", "--data", str(tmp_path / "shop"), "--model", str(tiny_bert)]
    args += ["--query-column", "search", "--document-column", "title", "--document-column", "bullets"]
    assert main(args + ["--label-column", "stars", "--budget", "8"]) == 0
    recipe = load_recipe(folder)
    assert (recipe.task, recipe.data.document_columns, recipe.metric.name) == (
        "ranking",
        ["title", "bullets"],
        "ndcg@10",
    )
    commit_all(repo)
    run = ["run", str(folder), "--tag", "t", "--max-experiments", "0", "--baseline-repeats", "1", "--grace", "60"]
    assert main(run + ["--run-dir", str(tmp_path / "runs")]) == 0
    (base,) = Ledger(tmp_path / "runs" / "t").records()
    assert base.status == "keep", base.reason
    assert base.scores["holdout"]["num_queries"] == 6 and 0 < base.holdout <= 1
    assert main(["classical", str(folder), "--tag", "t", "--run-dir", str(tmp_path / "runs")]) == 0
    lines = json.loads((tmp_path / "runs" / "t" / "classical.json").read_text())["lines"]
    assert [line["name"].split()[0] for line in lines] == ["BM25", "random", Path(tiny_bert).name]
    assert lines[0]["holdout"] == 1.0 > lines[1]["holdout"]  # BM25 ranks the "query N" titles by term frequency
    capsys.readouterr()
    assert main(["status", "t", "--run-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert f"classical: BM25 over each query's judged documents: selection {lines[0]['selection']:.4f}" in out
    assert package_state() == before
