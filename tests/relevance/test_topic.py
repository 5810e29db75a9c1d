"""Topics as people type them, ranked (topic.py): facets, qualifiers, common heads, spellings,
hyphenated words, words learned from the catalog, and admission."""

from __future__ import annotations

import pytest
from catalogs import seed_papers

from newsletter.models import Paper
from newsletter.relevance.rank import Match, Ranker


def paper(id: str, title: str, abstract: str = "") -> Paper:
    return Paper(id=id, title=title, abstract=abstract)


def ids(matches: list[Match]) -> list[str]:
    return [m.paper.id for m in matches]


# Unrelated papers, so that words have realistic rarity.
FILLER = [paper(f"filler-{i}", f"Crystal growth study {i}",
                f"We grow crystals of salt number {i} in a furnace and measure their density.")
          for i in range(40)]


@pytest.fixture(scope="module")
def seeds() -> Ranker:
    return Ranker(seed_papers())


def test_each_facet_of_a_compound_topic_finds_its_papers_and_gets_its_share() -> None:
    ranker = Ranker([
        paper("few-1", "Few-shot learning with prototypes",
              "We classify new classes from five examples with prototypical networks."),
        paper("few-2", "Episodic training for few-shot classification",
              "Prototypes of each class are averaged over the support set."),
        paper("meta-1", "Meta-learning an initialization",
              "Meta-learning finds an initialization that adapts in a few gradient steps."),
        paper("meta-2", "Meta-learning learned optimizers",
              "An optimizer is itself meta-learned across many training tasks."),
        *FILLER])
    matches = ranker.rank("meta-learning / few-shot learning")
    assert set(ids(matches)) == {"few-1", "few-2", "meta-1", "meta-2"}
    assert {"few", "meta"} == {pid.split("-")[0] for pid in ids(matches)[:2]}
    reasons = {m.paper.id: m.reason for m in matches}
    assert reasons["few-1"] == "matches: few-shot learning (title)"
    assert reasons["meta-1"] == "matches: meta-learning (title)"


def test_a_qualifier_boosts_but_does_not_gate() -> None:
    ranker = Ranker([
        paper("both", "Graph neural networks for PDE solvers",
              "Message passing on meshes solves partial differential equations."),
        paper("head", "Graph neural networks for molecules",
              "Message passing predicts the energy of a molecule."),
        paper("other", "Spectral methods", "Chebyshev bases for PDE solvers."),
        *FILLER])
    matches = ranker.rank("graph neural networks for PDEs")
    assert ids(matches)[:2] == ["both", "head"]  # "head" lacks PDEs and is still there
    assert matches[0].score > matches[1].score
    assert "PDEs" in matches[0].reason and "PDEs" not in matches[1].reason


def background(prefix: str, title: str, abstract: str, n: int = 12) -> list[Paper]:
    """``n`` papers that all say the same words (``{}`` is each one's number)."""
    return [paper(f"{prefix}-{i}", title.format(i), abstract.format(i)) for i in range(n)]


def test_a_common_head_leaves_its_qualifier_as_the_subject() -> None:
    # In a catalog of deep learning papers "deep learning" says nothing: "deep learning for
    # weather" is about weather.
    common = background("dl", "Deep learning trick {}", "A deep learning method for image task {}.")
    ranker = Ranker([
        paper("weather", "Nowcasting precipitation", "Deep learning forecasts weather radar."),
        paper("weather-plain", "Weather forecasting with ensembles", "Ensembles of models."),
        *common, *FILLER])
    assert set(ids(ranker.rank("deep learning for weather"))) == {"weather", "weather-plain"}


def test_a_qualifier_boosts_however_common_its_words_are() -> None:
    # In a catalog of graph papers "graphs" is in a quarter of them, and still "attention on
    # graphs" is about graphs: the papers on attention over graphs come first.
    graphs = background("graph", "Graph partitioning study {}", "Spectral methods for graph {}.")
    ranker = Ranker([
        paper("seq", "Attention in sequence models", "We study attention in sequence models."),
        paper("text", "Attention in language models", "We study attention in language models."),
        paper("gat", "Attention in graph models", "We study attention in graph models."),
        *graphs, *FILLER])
    found = ranker.rank("attention on graphs")
    assert ids(found)[0] == "gat" and found[0].score > found[1].score
    # the topic and its facet without the qualifier are two rankings
    assert ranker.understand("attention on graphs").key != ranker.understand("attention").key


def test_a_misspelt_word_is_read_as_the_catalog_word() -> None:
    ranker = Ranker([
        paper("gnn", "Graph neural networks for chemistry", "Message passing on molecules."),
        paper("gnn-2", "Scaling graph neural networks", "Sampling neighbours."),
        *FILLER])
    assert ranker.understand("graph nueral networks").key == ranker.understand(
        "graph neural networks").key
    assert set(ids(ranker.rank("graph nueral networks"))) == {"gnn", "gnn-2"}
    # Short unknown words are left alone: "crop" is not "drop".
    assert ranker.rank("crop yield") == []


def test_a_long_misspelt_word_with_a_short_stem_is_read_as_the_catalog_word() -> None:
    # "varational" stems to "varat", too short to correct by the stem alone; the typed word is
    # long and no English word, so it is a misspelling of "variational".
    ranker = Ranker([
        paper("vi", "Variational inference at scale", "Stochastic variational bounds."),
        paper("vi-2", "Amortized variational inference", "Encoders for posteriors."),
        paper("form", "Forming graphs", "How networks form."),
        paper("form-2", "Closed-form solutions", "A closed form for the form factor."),
        *FILLER])
    assert set(ids(ranker.rank("varational inference"))) == {"vi", "vi-2"}
    # A real word is not a misspelling, however close to a catalog word: "farming" stems to
    # "farm", one edit from "form", and an off-catalog interest stays off-catalog.
    assert ranker.rank("farming") == []


def test_an_abbreviation_the_catalog_never_uses_leaves_its_spelled_out_name_to_match() -> None:
    """"learning" and "optimize" are each in most papers, "learning to optimize" in two: the
    phrase is the subject, not context, so "learning to optimize (L2O)" finds them."""
    common = background("opt", "Learning rates study {}",
                        "Learning with stochastic optimization of model {}.")
    ranker = Ranker([
        paper("l2o", "Learning to optimize with recurrent networks", "Learned update rules."),
        paper("l2o-2", "Meta-trained optimizers", "We learn to optimize neural networks."),
        *common, *FILLER])
    found = ids(ranker.rank("learning to optimize (L2O)"))
    assert set(found[:2]) == {"l2o", "l2o-2"} and set(found) <= {"l2o", "l2o-2", *ids_of(common)}
    # each word is common, the phrase is not
    assert ranker._scorer._generic(["learn", "optim"])
    assert ranker.index.phrase_share(("learn", "optim")) < 0.1


def ids_of(papers: list[Paper]) -> list[str]:
    return [p.id for p in papers]


@pytest.mark.parametrize("topic", ["bilevel optimization", "bi-level optimization",
                                   "bi level optimization"])
def test_hyphenated_and_joined_spellings_meet(topic: str) -> None:
    ranker = Ranker([
        paper("hyphen", "Bi-level optimization under noise", "Upper and lower problems."),
        paper("joined", "Fast bilevel optimization", "Implicit gradients."),
        *FILLER])
    assert set(ids(ranker.rank(topic))) == {"hyphen", "joined"}


def test_words_the_best_matches_share_find_a_paper_that_never_says_the_topic() -> None:
    contrastive = [paper(f"cl-{i}", title, abstract) for i, (title, abstract) in enumerate([
        ("Contrastive learning of visual features",
         "Positive pairs from augmented views and negative pairs from other images train it."),
        ("Hard negatives for contrastive learning",
         "We mine hard negative pairs; positive pairs share an image under augmented views."),
        ("Contrastive learning with a memory bank",
         "Augmented views of an image form positive pairs, other images negative pairs."),
        ("Momentum contrastive learning",
         "A momentum encoder keeps negative pairs consistent; augmented views give positives."),
    ])]
    unnamed = paper("unnamed", "Instance discrimination at scale",
                    "Two augmented views of an image are a positive pair; every other image "
                    "gives negative pairs.")
    ranker = Ranker([*contrastive, unnamed, *FILLER])
    matches = {m.paper.id: m for m in ranker.rank("contrastive learning")}
    assert "unnamed" in matches
    assert matches["unnamed"].score < min(matches[f"cl-{i}"].score for i in range(4))
    assert "related to contrastive learning: " in matches["unnamed"].reason


@pytest.mark.parametrize("topic", ["medieval poetry", "crop yield prediction",
                                   "sign language translation", "/"])
def test_an_interest_nothing_in_the_catalog_is_about_gets_nothing(seeds: Ranker,
                                                                 topic: str) -> None:
    assert seeds.rank(topic) == []


def test_a_topic_said_once_in_a_long_abstract_still_yields_its_paper(seeds: Ranker) -> None:
    words = " ".join(p.abstract for p in seeds.papers[:3])
    lone = paper("lone", "A study of solvers", f"{words} We also try symplectic integrators.")
    ranker = Ranker([*seeds.papers, lone])
    assert ids(ranker.rank("symplectic integrators")) == ["lone"]


def test_a_compound_topic_whose_matches_are_all_too_weak_gets_nothing_and_no_error() -> None:
    # Each facet finds papers that share a word or two, none strong enough to be admitted:
    # the fair share of each facet's best must not be asked of facets that admitted nothing
    # (it raised ValueError on an empty max()).
    ranker = Ranker([
        paper("codes", "Fast decoding of error-correcting codes",
              "A decoder for codes on noisy channels."),
        paper("liquids", "Interfaces between liquids",
              "Surface tension at the interface of two liquids."),
        paper("atlas", "Brain atlases", "Mapping regions of the mouse brain."),
        paper("vision", "Computer vision", "Recognising objects with a computer."),
        *FILLER])
    assert ranker.rank("EEG decoding / brain-computer interfaces") == []


ODD_TOPICS = [
    "",
    "   ",
    "the of and / for, in",  # stopwords and separators only
    "?!... --- /// ,,, ;;",  # punctuation only
    "graph neural networks for " + "molecules and proteins, " * 20,  # ~500 characters
    "x" * 500,
    "🤖 robots 🚀 and 🧠",  # emoji around words
    "🤖🚀🧠",
    ".* (a|b)+ [^x] \\d{3} $ ^ \\",  # regular-expression metacharacters
    "GNN'; DROP TABLE papers; --",  # SQL-ish text
    "1 OR 1=1",
    "(((((", "[[[[ ]]]]", ")(",
]


@pytest.mark.parametrize("topic", ODD_TOPICS)
def test_any_text_typed_as_a_topic_returns_a_list_without_error(seeds: Ranker, topic: str,
                                                                 ) -> None:
    matches = seeds.rank(topic)
    assert isinstance(matches, list)
    assert all(0.0 <= m.score <= 1.0 and m.reason for m in matches)
    assert isinstance(seeds.recommend([topic, "GNN"], 5), list)
