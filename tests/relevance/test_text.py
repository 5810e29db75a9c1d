"""The analysis shared by papers and topics (newsletter/text.py): tokens, stems, compounds and
the vocabulary file. How topics then match papers is in test_rank.py."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.relevance.text import (
    _HYPHENATED,
    STOPWORDS,
    Vocabulary,
    _stem,
    american,
    compounds,
    normalize_topic,
    query_terms,
    terms,
)


def test_tokenizer_splits_hyphens_strips_abbreviation_plurals_and_stems() -> None:
    assert terms("Physics-informed PINNs, GNNs, INRs and LLMs") == [
        "physic", "informed", "pinn", "gnn", "inr", "llm"]
    # Stems that would collide with unrelated words are kept apart.
    assert terms("transformers transformation optimal optimization informed information") == [
        "transformer", "transform", "optimal", "optim", "informed", "inform"]
    assert terms("The networks of the fields") == ["network", "field"]
    assert terms("Schrödinger ﬁelds") == terms("Schrodinger fields")


def test_normalize_topic_ignores_case_hyphens_and_plurals() -> None:
    assert normalize_topic("Graph  Neural-Networks") == normalize_topic("graph neural network")
    assert normalize_topic("GNNs") == normalize_topic("gnn") == "gnn"


def test_vocabulary_covers_the_required_abbreviations() -> None:
    text = resources.files("newsletter").joinpath("data/vocabulary.toml").read_text("utf-8")
    table = tomllib.loads(text)
    required = ("GNN GCN GAT MPNN PINN NAS DARTS NTK INR NeRF OT GP BNN SNN LLM VAE GAN RL SSM "
                "ViT CNN RNN LSTM MoE PTQ QAT KD PDE ODE SGD MCMC HMC DEQ GFlowNet MAE SAM "
                "LoRA NLP CV XAI GCL").split()
    assert [name for name in required if name not in table] == []
    assert [s for s in table["BNN"]["senses"]] == [
        ["Bayesian neural network"], ["binary neural network", "binarized neural network"]]
    Vocabulary(table)  # every `includes` names an existing entry


def test_vocabulary_rejects_unknown_includes() -> None:
    with pytest.raises(ValueError, match="GNN includes unknown entry 'GXN'"):
        Vocabulary({"GNN": {"expansions": ["graph neural network"], "includes": ["GXN"]}})


def test_lowercase_abbreviation_plurals_in_topics() -> None:
    assert normalize_topic("gnns") == normalize_topic("GNNs") == "gnn"
    assert normalize_topic("llms") == "llm"
    assert normalize_topic("dogs") == "dog"  # ordinary words are left to the stemmer


def test_operator_and_operation_are_different_terms() -> None:
    assert terms("neural operators") == ["neural", "operator"]
    assert terms("search operations") == ["search", "oper"]


@pytest.mark.parametrize("british, american", [
    ("quantisation", "quantization"), ("optimisations", "optimizations"),
    ("regularised", "regularized"), ("behaviour", "behavior"), ("centre", "center"),
    ("analyse", "analyze"), ("neighbours", "neighbors"), ("discretisation", "discretization")])
def test_british_and_american_spellings_are_one_term(british: str, american: str) -> None:
    assert terms(british) == terms(american)
    assert query_terms(f"neural network {british}") == query_terms(f"neural network {american}")


@pytest.mark.parametrize("word", ["noise", "promise", "hours", "supervised", "four", "precise",
                                  "otherwise", "denoising"])
def test_words_that_only_look_british_are_left_alone(word: str) -> None:
    # Words of the American dictionary, or ("denoising") with no American form that is one.
    assert american(word) == word


@pytest.mark.parametrize("spellings, term", [
    (["Q-learning", "Q learning", "q-Learning", "Qlearning"], "qlearn"),
    (["k-means", "K means", "k\u2011means", "kmeans"], "kmean"),
    (["t-SNE", "tSNE"], "tsne"),
    (["U-Net", "UNets", "U-nets"], "unet"),
    (["R-CNN", "R-CNNs", "RCNN"], "rcnn"),
    (["A*", "A-star", "Astar"], "astar"),
])
def test_a_one_letter_word_joined_to_the_next_is_one_term_however_it_is_spelled(
        spellings: list[str], term: str) -> None:
    # Alone, one-letter words are dropped: "Q-learning" used to be the topic "learning".
    assert {tuple(query_terms(spelling)) for spelling in spellings} == {(term,)}
    assert normalize_topic(spellings[0]) == term != normalize_topic(spellings[0][2:])


def test_a_paper_keeps_the_compound_and_the_word_itself() -> None:
    # So a topic "CNN" still finds "Faster R-CNN", while "R-CNN" does not find every CNN.
    assert terms("Faster R-CNN and deep Q-networks") == [
        "faster", "rcnn", "cnn", "deep", "qnetwork", "network"]
    assert query_terms("Faster R-CNN and deep Q-networks") == ["faster", "rcnn", "deep",
                                                               "qnetwork"]
    assert query_terms("A* search") == ["astar", "search"]


def test_one_letter_words_standing_alone_still_vanish() -> None:
    assert terms("e.g. a model's loss, i.e. f(x) for each x") == ["model", "loss"]
    assert terms("A learning rule") == terms("learning rule")  # the article, not a compound
    assert terms("x is fixed") == ["fix"]  # a stopword after the letter: no compound either


def test_vocabulary_knows_q_learning_apart_from_learning() -> None:
    vocabulary = Vocabulary.load()
    labels = {v.label for v in vocabulary.variants(vocabulary.analyze("Q-learning"))}
    assert {"Q-learning", "DQN", "deep Q-network"} <= labels
    assert not labels & {v.label for v in vocabulary.variants(vocabulary.analyze("learning"))}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(
    list("ab Zé-_1²\u2010\u2011\u00a0\t\n\x1c.,(") + ["self", "bi", "level", "x"]),
    max_size=40).map("".join))
def test_compounds_finds_what_the_pattern_finds_over_the_whole_text(text: str) -> None:
    """compounds() runs the pattern chunk by chunk, for speed: the pairs must be exactly those
    of the pattern over the whole text (whitespace is neither a word character nor a hyphen)."""
    whole = [_stem(a + b) for a, b in _HYPHENATED.findall(text)
             if a.lower() not in STOPWORDS and b.lower() not in STOPWORDS]
    assert compounds(text) == [term for term in whole if term]


def test_compounds_joins_hyphenated_words_and_skips_stopwords() -> None:
    assert compounds("A bi-level, self\u2010supervised and-or x-ray study") == [
        "bilevel", "selfsupervis"]
