"""The query-expansion metric rewards useful expansions and gives little to format-only or copied ones."""

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
    from importlib import util

    spec = util.spec_from_file_location("qe_metric", metric_path("query_expansion") / "query_expansion.py")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.chrf("ssh key", "ssh key") == 1.0 and module.chrf("xyz", "abc") == 0.0
    assert 0 < module.chrf("ssh keys setup", "ssh key set up") < 1
    both = metric.compute(
        predictions=[GOOD, FORMAT_ONLY],
        references=[{"query": QUERY, "expansion": REFERENCE}] * 2,
    )
    assert both["score"] == pytest.approx((score(metric, GOOD)["score"] + score(metric, FORMAT_ONLY)["score"]) / 2)
