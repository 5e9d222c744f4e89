"""The query-expansion metric rewards useful expansions and gives little to format-only or copied ones."""

import importlib

import evaluate
import pytest

from hf_autoresearch.metrics import metric_path

QUERY = "ssh key authentication"
REFERENCE = "\n".join(
    [
        "lex: ssh key auth setup",
        "lex: ssh public private key pair",
        "lex: passwordless ssh login",
        "vec: how to set up ssh key-based authentication instead of passwords",
        "vec: step-by-step guide to generating and configuring ssh keys for secure server access",
        "hyde: Generate an SSH key pair with ssh-keygen -t ed25519. Copy the public key to ~/.ssh/authorized_keys "
        "on the remote server using ssh-copy-id.",
    ]
)
GOOD = "\n".join(
    [
        "lex: ssh keygen authorized_keys",
        "lex: ssh public key login",
        "vec: how do I log in to a server with an ssh key instead of a password",
        "vec: configuring public key authentication for ssh",
        "hyde: Create a key with ssh-keygen, then copy the public key to the server's authorized_keys file to log in "
        "without a password.",
    ]
)
ECHO = f"lex: {QUERY}\nlex: ssh authentication\nvec: {QUERY}\nvec: key authentication ssh"
FORMAT_ONLY = "lex: a\nvec: b"
FILLER = "lex: ssh key authentication guide\nlex: ssh key authentication guide\nvec: how to ssh key authentication"
PROSE = "Sure! Here are some expansions:\n" + GOOD
CHAT_LEAK = GOOD + "<|im_end|>"
NO_VEC = "lex: ssh public key login\nlex: ssh keygen"
TWO_HYDE = GOOD + "\nhyde: Another passage about ssh keys and how servers check them against authorized_keys."


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(str(metric_path("query_expansion")))


def score(metric, prediction: str, query: str = QUERY, reference: str = REFERENCE) -> dict:
    return metric.compute(predictions=[prediction], references=[{"query": query, "expansion": reference}])


def test_reference_scores_near_one_and_a_good_paraphrase_well(metric):
    assert score(metric, REFERENCE)["score"] > 0.9
    good = score(metric, GOOD)
    assert good["valid"] == 1.0 and good["diversity"] == 1.0 and good["vec_natural"] == 1.0
    assert 0.6 < good["score"] < score(metric, REFERENCE)["score"]


@pytest.mark.parametrize("bad", [PROSE, CHAT_LEAK, NO_VEC, TWO_HYDE, "", "lex:\nvec: "])
def test_invalid_format_scores_zero(metric, bad):
    result = score(metric, bad)
    assert result["valid"] == 0.0 and result["score"] == 0.0


@pytest.mark.parametrize("gamed", [ECHO, FORMAT_ONLY])
def test_valid_format_alone_earns_little(metric, gamed):
    result = score(metric, gamed)
    assert result["valid"] == 1.0
    assert result["score"] < 0.15 < score(metric, GOOD)["score"] - 0.45


def test_repeated_lines_lower_diversity(metric):
    result = score(metric, FILLER)
    assert result["diversity"] < 0.5
    assert result["score"] < score(metric, GOOD)["score"] - 0.2


def test_entities_must_survive_in_lex_lines(metric):
    query, reference = (
        "meeting with Bob about C++",
        "lex: Bob C++ meeting notes\nvec: notes from the meeting with Bob on C++",
    )
    kept = score(
        metric, "lex: Bob C++ discussion notes\nvec: what Bob and I discussed about C++ code", query, reference
    )
    lost = score(metric, "lex: programming discussion notes\nvec: what we discussed about the code", query, reference)
    assert kept["preserve"] == 1.0 and lost["preserve"] == 0.0
    assert kept["score"] > lost["score"] + 0.2


def test_keywords_in_vec_and_sentences_in_lex_are_marked_down(metric):
    swapped = score(
        metric,
        "lex: how do I set up a login to my server with a key instead of a password?\nvec: ssh keygen authorized_keys",
    )
    assert swapped["lex_keywords"] == 0.0 and swapped["vec_natural"] == 0.0
    assert swapped["score"] < score(metric, GOOD)["score"] - 0.15


def test_chrf_and_corpus_mean(metric):
    module = importlib.import_module("hf_autoresearch.metrics.query_expansion.query_expansion")
    assert module.chrf("ssh key", "ssh key") == 1.0 and module.chrf("xyz", "abc") == 0.0
    assert 0 < module.chrf("ssh keys setup", "ssh key set up") < 1
    both = metric.compute(
        predictions=[GOOD, FORMAT_ONLY],
        references=[{"query": QUERY, "expansion": REFERENCE}] * 2,
    )
    assert both["score"] == pytest.approx((score(metric, GOOD)["score"] + score(metric, FORMAT_ONLY)["score"]) / 2)


def test_chrf_is_character_chrf_lower_cased_without_spaces_worked_by_hand():
    """chrF as the metric's docstring states it, worked out by hand: character n-gram precision P and recall R
    averaged over the orders both sides have, then F-beta with beta 2: (1 + 4) P R / (4 P + R)."""
    module = importlib.import_module("hf_autoresearch.metrics.query_expansion.query_expansion")
    # "a" vs "abc": 1-grams only, P = 1, R = 1/3 -> 5/3 / (13/3) = 5/13
    assert module.chrf("a", "abc") == pytest.approx(5 / 13, abs=1e-12)
    # "ab" vs "abc": 1-grams P = 1, R = 2/3; 2-grams P = 1, R = 1/2 -> R = 7/12 -> 35/12 / (55/12) = 7/11
    assert module.chrf("ab", "abc") == pytest.approx(7 / 11, abs=1e-12)
    assert module.chrf("A B", "abc") == module.chrf("ab", "abc")  # lower-cased, whitespace removed


# --- QMD's rubric (finetune/SCORING.md): its worked examples --------------------------------------------------
RUBRIC_GOOD = "\n".join(
    [
        "hyde: React Hooks allow you to use state and lifecycle features in functional components without writing "
        "a class.",
        "lex: react hooks tutorial",
        "lex: usestate useeffect",
        "vec: how to use react hooks in functional components",
        "vec: react hooks best practices guide",
    ]
)
RUBRIC_BAD = (
    "auth is an important concept that relates to authentication.\n"
    "The answer should be in Chinese.\nThe answer should be in Chinese."
)
RUBRIC_MEDIUM = (
    "hyde: Docker networking is an important concept. Docker networking is used for container communication. "
    "Docker networking configuration is essential.\nlex: docker networking\nvec: docker networking"
)


@pytest.fixture(scope="module")
def rubric():
    return importlib.import_module("hf_autoresearch.metrics.query_expansion.qmd_rubric")


@pytest.mark.parametrize(
    ("query", "expansion", "parts", "total", "maximum"),
    [
        # the rubric: format 30, diversity 28, hyde 17, quality 10 (85/100). Diversity here is 30: both pairs are
        # diverse under the table's thresholds and the rubric's is_diverse (only a word-level Levenshtein distance
        # gives 28, and it calls any two 3-word lex lines duplicates). Hyde here is 20: the passage passes every row
        # of the hyde table (one line, 107 chars, no repeated word), so no reading gives 17.
        ("react hooks", RUBRIC_GOOD, {"format": 30, "diversity": 30, "hyde": 20, "quality": 10}, 90, 100),
        # the rubric: 0, 0, 0, 15 (15 points); no hyde and no entity leave a max of 80
        ("auth", RUBRIC_BAD, {"format": 0, "diversity": 0, "hyde": 0, "quality": 15}, 15, 80),
        # the rubric: 30, 10, 5, 10 (55/100). Hyde here is 16: present 5, 143 chars 5, one line 5, and the rubric's
        # word_repetition_score 5 - 2 x 2 repeated words (docker, networking) = 1; its table cannot reach 5.
        ("docker networking", RUBRIC_MEDIUM, {"format": 30, "diversity": 10, "hyde": 16, "quality": 10}, 66, 100),
    ],
)
def test_rubric_worked_examples(rubric, query, expansion, parts, total, maximum):
    result = rubric.score_expansion(query, expansion)
    assert {key: result[key] for key in parts} == parts
    assert (result["entity"], result["has_entities"]) == (0, False)  # no named entity: the section does not apply
    assert (result["total"], result["max"]) == (total, maximum)
    assert result["score"] == pytest.approx(total / maximum)


def test_rubric_worked_examples_through_the_metric(metric):
    result = metric.compute(
        predictions=[RUBRIC_GOOD, RUBRIC_BAD, RUBRIC_MEDIUM],
        references=[{"query": q, "expansion": REFERENCE} for q in ("react hooks", "auth", "docker networking")],
    )
    assert result["qmd_score"] == pytest.approx((0.90 + 15 / 80 + 0.66) / 3)
    assert result["qmd_format"] == pytest.approx(20) and result["qmd_quality"] == pytest.approx(35 / 3)
    assert result["qmd_excellent"] == pytest.approx(1 / 3) and result["qmd_entity_rows"] == 0.0
    assert result["score"] == pytest.approx(
        sum(score(metric, p)["score"] for p in (RUBRIC_GOOD, RUBRIC_BAD, RUBRIC_MEDIUM)) / 3
    )
    empty = metric.compute(predictions=[], references=[])
    assert set(empty) == set(result) and empty["qmd_score"] == 0.0  # the ledger averages the same keys every time


@pytest.mark.parametrize(
    ("query", "entities"),
    [
        ("who is TDS motorsports", ["tds", "motorsports"]),  # acronym, then a compound name
        ("meeting with Bob about C++", ["bob", "c++"]),
        ("Bob asked about deploy", ["bob"]),  # a personal name at the start
        ("Rachel's notes on the vendor evaluation", ["rachel"]),  # a possessive keeps the name
        ("how to use React hooks", ["react", "hooks"]),
        ("node.js vs JavaScript", ["node.js", "javascript"]),
        ("Configure nginx", []),  # a capitalised query verb is not a name
        ("docker networking", []),
    ],
)
def test_rubric_named_entities(rubric, query, entities):
    assert rubric.named_entities(query) == entities


@pytest.mark.parametrize(
    ("query", "expansion", "entity"),
    [
        # the rubric's good and bad lex for its entity examples
        (
            "who is TDS motorsports",
            "lex: TDS motorsports history\nlex: TDS motorsports founders\n"
            "vec: who founded the TDS motorsports racing team",
            20,
        ),  # fmt: skip
        # no lex line holds an entity (-30), both dropped (-40), one filler line (-15): clamped at -65
        ("who is TDS motorsports", "lex: find information about\nlex: company details\nvec: who is this company", -65),
        ("meeting with Bob about C++", 'lex: Bob "C++" meeting\nvec: meeting notes with Bob about C++', 20),
        ("meeting with Bob about C++", "lex: c++ meetings\nvec: programming meeting notes", 15 - 20),  # Bob dropped
        (
            "how to use React hooks",
            "lex: React hooks tutorial\nlex: useEffect useState hooks\nvec: managing state in a function component",
            15,
        ),  # fmt: skip (no entity in vec: no +5)
        ("how to use React hooks", "lex: programming tutorial\nlex: how to code\nvec: learn to write code", -65),
    ],
)
def test_rubric_entity_preservation(rubric, query, expansion, entity):
    result = rubric.score_expansion(query, expansion)
    assert result["has_entities"] and result["entity"] == entity
    assert result["max"] == 100  # no hyde: 80 + 20 for the entity section


def test_rubric_dropping_a_name_costs_more_than_anything_else(rubric):
    query = "meeting with Bob about C++"
    kept = rubric.score_expansion(query, 'lex: Bob "C++" meeting\nvec: meeting notes with Bob about C++')
    dropped = rubric.score_expansion(query, "lex: c++ meetings\nvec: programming meeting notes")
    assert kept["score"] > dropped["score"] + 0.2


def test_rubric_format_deductions(rubric):
    clean = "lex: ssh public key login\nvec: how to log in to a server with an ssh key"
    assert rubric.score_expansion(QUERY, clean)["format"] == 30
    assert rubric.score_expansion(QUERY, clean + "\nLex: ssh keygen")["format"] == 25  # a wrong prefix: -5
    assert rubric.score_expansion(QUERY, "Sure! Here you go:\n" + clean)["format"] == 15  # prose: -5 and -10
    assert rubric.score_expansion(QUERY, clean + "<|im_end|>")["format"] == 20  # a leaked template token is garbage
    assert rubric.score_expansion(QUERY, "lex: ssh public key login")["format"] == 10  # no vec: -10 for +10


def test_rubric_diversity_deductions(rubric):
    distinct = "lex: ssh keygen ed25519\nlex: authorized_keys file permissions\nvec: how to log in with an ssh key"
    assert rubric.score_expansion(QUERY, distinct)["diversity"] == 25  # a single vec line earns no pair points
    near_copy = "lex: ssh keygen ed25519\nlex: ssh keygen rsa\nvec: how to log in with an ssh key"
    assert rubric.score_expansion(QUERY, near_copy)["diversity"] == 23  # 2 words differ, not > 3: -2
    contained = "lex: ssh keygen\nlex: ssh keygen ed25519 rsa dsa\nvec: how to log in with an ssh key"
    assert rubric.score_expansion(QUERY, contained)["diversity"] == 23  # one line inside the other: -2
    echo = f"lex: {QUERY}\nlex: ssh keygen ed25519 setup\nvec: how to log in with an ssh key"
    assert rubric.score_expansion(QUERY, echo)["diversity"] == 20  # a line equal to the query: -5


def test_rubric_hyde_and_quality_rows(rubric):
    base = "lex: ssh keygen\nvec: how to log in to a server with an ssh key\n"
    short = rubric.score_expansion(QUERY, base + "hyde: Use ssh-keygen.")
    assert (short["hyde"], short["max"]) == (17, 100)  # too short: 5 - 3
    long_text = (
        "Generate a key pair locally with ssh-keygen, choosing ed25519 unless an old server needs RSA. Copy the "
        "public half into ~/.ssh/authorized_keys on the server, then disable password logins in sshd_config."
    )
    assert rubric.score_expansion(QUERY, base + "hyde: " + long_text)["hyde"] == 15  # too long: 5 - 5
    two_lines = "hyde: Generate a key pair with ssh-keygen and copy\nthe public key to the server."
    wrapped = rubric.score_expansion(QUERY, base + two_lines)
    assert wrapped["hyde"] == 15 and wrapped["format"] == 15  # ran onto an unprefixed line: -5 hyde, -5 -10 format
    keywords_vec = rubric.score_expansion(QUERY, "lex: ssh keygen\nvec: ssh key login setup guide")
    assert keywords_vec["quality"] == 15  # base 5, key terms 5, lex shorter 5; the vec line is a keyword list
    generic = rubric.score_expansion(QUERY, "lex: search for\nvec: how to log in to a server with an ssh key")
    assert generic["quality"] == 15  # a filler lex line keeps no key term


def test_rubric_quoted_phrase_bonus(rubric):
    query = "python memory leak debugging"
    plain = rubric.score_expansion(query, "lex: python memory leak\nvec: how to find memory leaks in Python")
    quoted = rubric.score_expansion(query, 'lex: "memory leak" python -java\nvec: how to find memory leaks in Python')
    assert quoted["quality"] == plain["quality"] + 3 == 23
