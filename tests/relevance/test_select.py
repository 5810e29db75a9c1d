from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from catalogs import seed_papers
from paths import FIXTURES, TEMPLATES

from newsletter.models import Paper, Subscriber
from newsletter.relevance.rank import Match, Ranker
from newsletter.relevance.select import FRESHNESS_BOOST, build_digest, edition_for

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc)


def paper(id: str, title: str, abstract: str = "", published: date | None = None) -> Paper:
    return Paper(id=id, title=title, abstract=abstract, published=published)


def subscriber(*topics: str, exclude: tuple[str, ...] = (), max_papers: int = 10,
               frequency: str = "daily", timezone: str = "UTC") -> Subscriber:
    return Subscriber(email="ada@example.org", name="Ada", topics=topics, exclude=exclude,
                      max_papers=max_papers, frequency=frequency, timezone=timezone)


CATALOG = [
    paper("g-title", "Graph Neural Networks for Molecules", "We predict properties.",
          date(2026, 11, 20)),
    paper("g-abstract", "Learning on molecules", "A GNN predicts binding.", date(2026, 11, 21)),
    paper("g-private", "Private training", "Differential privacy for GNN training on graphs.",
          date(2026, 11, 19)),
    paper("o-title", "Optimal Transport Between Point Clouds", "We align shapes.",
          date(2026, 11, 18)),
    paper("o-abstract", "Aligning measures", "OT plans align two samples.", date(2026, 11, 22)),
    paper("both", "Optimal Transport for Graph Neural Networks", "Graph matching with OT.",
          date(2026, 11, 17)),
    paper("nas", "Neural Architecture Search on a Budget", "Cheap search.", date(2026, 11, 16)),
]


@pytest.fixture(scope="module")
def ranker() -> Ranker:
    return Ranker(CATALOG)


def test_sections_follow_subscriber_topics_and_each_paper_appears_once(ranker: Ranker) -> None:
    digest = build_digest(subscriber("optimal transport", "GNN"), ranker, set(), "2026-11-23", NOW)
    assert digest is not None
    assert [s.topic for s in digest.sections] == ["optimal transport", "GNN"]
    assert sorted(digest.paper_ids) == sorted(set(digest.paper_ids))
    assert set(digest.paper_ids) == {"g-title", "g-abstract", "g-private", "o-title",
                                     "o-abstract", "both"}
    for section in digest.sections:
        scores = [item.score for item in section.items]
        assert scores == sorted(scores, reverse=True)
        assert all(item.topic == section.topic for item in section.items)
        assert all(item.reason.startswith(f"matches: {section.topic}") for item in section.items)
    assert (digest.edition, digest.created_at) == ("2026-11-23", NOW)


def test_paper_matching_two_topics_is_filed_under_its_best(ranker: Ranker) -> None:
    # "both" has each phrase in its title, and "graph" again in its abstract: GNN scores higher,
    # so it goes under the subscriber's second topic, not the first one that found it.
    ot = next(m for m in ranker.rank("optimal transport") if m.paper.id == "both")
    gnn = next(m for m in ranker.rank("GNN") if m.paper.id == "both")
    assert gnn.score > ot.score
    digest = build_digest(subscriber("optimal transport", "GNN"), ranker, (), "e", NOW)
    filed = {item.paper.id: item.topic for item in digest.items}
    assert filed["both"] == "GNN"
    assert digest.paper_ids.count("both") == 1


def test_already_sent_papers_are_left_out(ranker: Ranker) -> None:
    digest = build_digest(subscriber("GNN"), ranker, {"g-title", "both"}, "e", NOW)
    assert set(digest.paper_ids) == {"g-abstract", "g-private"}
    everything = {p.id for p in CATALOG}
    assert build_digest(subscriber("GNN"), ranker, everything, "e", NOW) is None


def test_excluded_topics_remove_their_papers(ranker: Ranker) -> None:
    plain = build_digest(subscriber("GNN"), ranker, (), "e", NOW)
    assert "g-private" in plain.paper_ids
    digest = build_digest(subscriber("GNN", exclude=("differential privacy",)), ranker, (), "e",
                          NOW)
    assert "g-private" not in digest.paper_ids
    assert set(digest.paper_ids) == set(plain.paper_ids) - {"g-private"}


def test_caps_at_max_papers_keeping_the_best(ranker: Ranker) -> None:
    full = build_digest(subscriber("GNN", "optimal transport"), ranker, (), "e", NOW)
    capped = build_digest(subscriber("GNN", "optimal transport", max_papers=2), ranker, (), "e",
                          NOW)
    assert len(capped.items) == 2
    # The topics take turns (select._fair): each keeps its best paper.
    best = {topic: max((i for i in full.items if i.topic == topic), key=lambda i: i.score)
            for topic in ("GNN", "optimal transport")}
    assert {i.paper.id for i in capped.items} == {i.paper.id for i in best.values()}


def test_empty_sections_are_skipped_and_irrelevant_topics_get_nothing(ranker: Ranker) -> None:
    digest = build_digest(subscriber("NAS", "medieval poetry", "GNN"), ranker, (), "e", NOW)
    assert [s.topic for s in digest.sections] == ["NAS", "GNN"]
    assert build_digest(subscriber("medieval poetry"), ranker, (), "e", NOW) is None


class StubRanker:
    """Fixed scores, to pin the freshness blend exactly."""

    def __init__(self, scored: dict[str, list[tuple[Paper, float]]]) -> None:
        self.lists = {topic: [Match(p, s, topic, f"matches: {topic} (title)") for p, s in pairs]
                      for topic, pairs in scored.items()}

    def rank(self, topic: str) -> list[Match]:
        return self.lists.get(topic, [])

    def matching_ids(self, topic: str) -> frozenset[str]:
        return frozenset(m.paper.id for m in self.rank(topic))

    def near_duplicate(self, a: Paper, b: Paper) -> bool:
        return False

    def near_duplicate_of_any(self, paper: Paper, others: Iterable[Paper]) -> bool:
        return any(self.near_duplicate(paper, other) for other in others)


def test_freshness_breaks_ties_and_nudges_close_calls() -> None:
    today, old = NOW.date(), date(2024, 1, 1)
    a, b = paper("a", "A", published=old), paper("b", "B", published=today)
    tie = StubRanker({"t": [(a, 1.0), (b, 1.0)]})
    assert build_digest(subscriber("t"), tie, (), "e", NOW).paper_ids == ["b", "a"]
    # Within the boost, the newer paper wins even though it ranks below `max_papers`.
    close = StubRanker({"t": [(a, 1.0), (b, 0.95)]})
    assert build_digest(subscriber("t", max_papers=1), close, (), "e", NOW).paper_ids == ["b"]
    # Beyond it, relevance decides.
    far = StubRanker({"t": [(a, 1.0), (b, 1.0 / (1 + FRESHNESS_BOOST) - 0.01)]})
    assert build_digest(subscriber("t", max_papers=1), far, (), "e", NOW).paper_ids == ["a"]


def test_freshness_uses_first_seen_when_published_is_unknown() -> None:
    seen_today = Paper(id="s", title="S", abstract="", first_seen_at=NOW - timedelta(hours=1))
    undated = Paper(id="u", title="U", abstract="")
    ranker = StubRanker({"t": [(undated, 1.0), (seen_today, 1.0)]})
    digest = build_digest(subscriber("t"), ranker, (), "e", NOW)
    assert digest.paper_ids == ["s", "u"]
    assert digest.items[0].score == pytest.approx(1.0 + FRESHNESS_BOOST, rel=0.01)
    assert digest.items[1].score == 1.0


def test_ties_between_topics_keep_the_earlier_topic() -> None:
    p = paper("p", "P")
    ranker = StubRanker({"first": [(p, 1.0)], "second": [(p, 1.0)]})
    digest = build_digest(subscriber("first", "second"), ranker, (), "e", NOW)
    assert [(s.topic, len(s.items)) for s in digest.sections] == [("first", 1)]


def seed_catalog() -> list[Paper]:
    return list(seed_papers())


def test_seed_catalog_digests_never_repeat_a_paper() -> None:
    ranker = Ranker(seed_catalog())
    reader = subscriber("GNN", "PINNs", "NTK", exclude=("privacy",), max_papers=10)
    first = build_digest(reader, ranker, (), "2026-11-23", NOW)
    assert len(first.items) == 10 and len(set(first.paper_ids)) == 10
    order = [s.topic for s in first.sections]
    assert order == [t for t in reader.topics if t in order]
    assert not set(first.paper_ids) & ranker.matching_ids("privacy")
    second = build_digest(reader, ranker, set(first.paper_ids), "2026-11-24", NOW)
    assert second is not None and not set(second.paper_ids) & set(first.paper_ids)
    assert build_digest(subscriber("medieval poetry"), ranker, (), "e", NOW) is None


SUNDAY_NIGHT = datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc)  # Mon 00:30 in Paris
MONDAY_MORNING = datetime(2026, 11, 30, 7, 30, tzinfo=timezone.utc)  # Sun 23:30 in LA


@pytest.mark.parametrize("now, zone, daily, weekly", [
    (SUNDAY_NIGHT, "UTC", "2026-11-29", "2026-W48"),
    (SUNDAY_NIGHT, "Europe/Paris", "2026-11-30", "2026-W49"),
    (SUNDAY_NIGHT, "America/Los_Angeles", "2026-11-29", "2026-W48"),
    (MONDAY_MORNING, "America/Los_Angeles", "2026-11-29", "2026-W48"),
    (MONDAY_MORNING, "Asia/Tokyo", "2026-11-30", "2026-W49"),
    (MONDAY_MORNING, "UTC", "2026-11-30", "2026-W49"),
    # ISO weeks cross years: 1 Jan 2027 is in 2026's week 53, 29 Dec 2025 in 2026's week 1.
    (datetime(2027, 1, 1, 12, tzinfo=timezone.utc), "UTC", "2027-01-01", "2026-W53"),
    (datetime(2025, 12, 29, 12, tzinfo=timezone.utc), "UTC", "2025-12-29", "2026-W01"),
    # The night clocks go forward in New York: 04:30 UTC is still 23:30 EST on the 7th.
    (datetime(2026, 3, 8, 4, 30, tzinfo=timezone.utc), "America/New_York", "2026-03-07",
     "2026-W10"),
])
def test_edition_is_the_local_date_or_iso_week(now: datetime, zone: str, daily: str,
                                               weekly: str) -> None:
    assert edition_for(subscriber("t", timezone=zone), now) == daily
    assert edition_for(subscriber("t", timezone=zone, frequency="weekly"), now) == weekly


def test_naive_now_is_taken_as_utc() -> None:
    naive = datetime(2026, 11, 29, 23, 30)
    assert edition_for(subscriber("t", timezone="Europe/Paris"), naive) == "2026-11-30"


# -- trending ----------------------------------------------------------------------------------



def hot(id: str, upvotes: int, hours_ago: float, title: str = "") -> Paper:
    return Paper(id=id, title=title or id.upper(), abstract="", upvotes=upvotes,
                 listed_at=NOW - timedelta(hours=hours_ago))


def test_the_trending_section_opens_the_digest_ordered_by_trending_times_relevance() -> None:
    # Hand-made: pick = upvotes / (hours + 2) ** 1.8 * relevance.
    big_old, small_new, middling = hot("a", 100, 48), hot("b", 10, 1), hot("c", 30, 6)
    calm = paper("d", "D")  # no engagement data: never trending
    ranker = StubRanker({"gnn": [(big_old, 1.0), (calm, 0.9)],
                         "ot": [(small_new, 0.1), (middling, 0.5)]})
    digest = build_digest(subscriber("gnn", "ot"), ranker, (), "e", NOW)
    trending, *rest = digest.sections
    assert (trending.topic, trending.trending) == ("Trending", True)
    picks = {i.paper.id: i.score for i in trending.items}
    assert picks == pytest.approx({"c": 30 / 8 ** 1.8 * 0.5,  # 0.355
                                   "b": 10 / 3 ** 1.8 * 0.1,  # 0.138
                                   "a": 100 / 50 ** 1.8 * 1.0})  # 0.087
    assert [i.paper.id for i in trending.items] == ["c", "b", "a"]
    # Relevance matters: "b" is the hottest paper but barely on topic, so "c" leads.
    assert [(s.topic, [i.paper.id for i in s.items]) for s in rest] == [("gnn", ["d"])]
    assert trending.items[0].topic == "ot"
    assert trending.items[0].reason == "trending: 30 upvotes; matches: ot (title)"


def test_trending_takes_at_most_three_slots_and_a_third_of_max_papers() -> None:
    papers = [hot(f"p{n}", 100 - n, 5) for n in range(8)]
    ranker = StubRanker({"t": [(p, 1.0) for p in papers]})
    ten = build_digest(subscriber("t", max_papers=10), ranker, (), "e", NOW)
    assert [len(s.items) for s in ten.sections] == [3, 5]
    assert ten.paper_ids == [f"p{n}" for n in range(8)]  # each paper once
    six = build_digest(subscriber("t", max_papers=6), ranker, (), "e", NOW)
    assert [len(s.items) for s in six.sections] == [2, 4]
    one = build_digest(subscriber("t", max_papers=1), ranker, (), "e", NOW)
    assert [(s.trending, len(s.items)) for s in one.sections] == [(True, 1)]


def test_sent_and_excluded_papers_never_trend() -> None:
    a, b, c = hot("a", 90, 2), hot("b", 80, 2), hot("c", 70, 2)
    ranker = StubRanker({"t": [(a, 1.0), (b, 1.0), (c, 1.0)], "x": [(b, 1.0)]})
    digest = build_digest(subscriber("t", exclude=("x",)), ranker, {"a"}, "e", NOW)
    assert digest.paper_ids == ["c"]


def test_a_trending_paper_far_from_every_topic_does_not_appear() -> None:
    viral = Paper(id="viral", title="Scaling Laws for Video Diffusion Models",
                  abstract="Bigger video models.", upvotes=5000, listed_at=NOW)
    gnn = Paper(id="gnn", title="Graph Neural Networks at Scale", abstract="Big graphs.",
                upvotes=6, listed_at=NOW - timedelta(hours=30))
    digest = build_digest(subscriber("GNN"), Ranker([viral, gnn]), (), "e", NOW)
    assert digest.paper_ids == ["gnn"] and digest.sections[0].trending


def test_without_engagement_data_the_digest_is_relevance_and_freshness_only(
        ranker: Ranker) -> None:
    digest = build_digest(subscriber("optimal transport", "GNN"), ranker, (), "e", NOW)
    assert not any(s.trending for s in digest.sections)
    assert not any("trending" in item.reason for item in digest.items)
    assert [s.topic for s in digest.sections] == ["optimal transport", "GNN"]


def test_a_digest_from_the_fixture_day_opens_with_the_trending_papers_on_its_topics(
        tmp_path: Path) -> None:
    from newsletter.catalog import ingest
    from newsletter.compose.render import Renderer
    from newsletter.compose.tokens import links_for
    from newsletter.store.catalog import load_papers
    from newsletter.store.engine import connect

    engine = connect(f"sqlite:///{tmp_path}/day.db")
    names = ["seed_page.txt", "arxiv_api.xml", "arxiv_rss.xml", "hf_daily.json", "papers.jsonl"]
    assert ingest.ingest(engine, [FIXTURES / n for n in names], NOW).rejected == []
    digest = build_digest(subscriber("GNN", "PINNs"), Ranker(load_papers(engine)), (),
                          "2026-11-23", NOW)
    trending, gnn = digest.sections
    # Trending on HF that day, in score order: 2611.03456 (video diffusion, 250 upvotes) is
    # the hottest but on neither topic; 2611.07890 has 2 upvotes, too few to trend.
    assert [i.paper.id for i in trending.items] == ["2611.01234", "2611.02345", "2611.05678"]
    assert [(gnn.topic, [i.paper.id for i in gnn.items])] == [("GNN", ["2611.07890"])]
    assert "2611.03456" not in digest.paper_ids
    renderer = Renderer(TEMPLATES,
                        base_url="https://p.example", site_name="Papers")
    reader = replace(digest.subscriber, link_id="ada-link-id1", link_key="k")
    links = links_for(reader, secret="s", base_url="https://p.example",
                      mailto="u@p.example")
    text = renderer.render(digest, links).text
    assert "Trending in your topics (3 papers)" in text
    assert "87 upvotes" in text
    assert "Code: https://github.com/example/forwardgnn (412 stars)" in text
    assert "Namyong Park, Xing Wang, Antoine Simoulin et al." in text


def test_topics_take_turns_so_a_rarer_topic_is_not_crowded_out() -> None:
    ranker = Ranker(seed_catalog())
    digest = build_digest(subscriber("GNN", "PINNs", max_papers=10), ranker, set(), "e", NOW)
    assert digest is not None
    sizes = {section.topic: len(section.items) for section in digest.sections}
    assert sizes["GNN"] >= 4 and sizes["PINNs"] >= 4, sizes
    assert sum(sizes.values()) == 10


def test_near_duplicate_papers_do_not_crowd_a_digest() -> None:
    abstract = ("We train physics-informed neural networks for battery models and infer their "
                "parameters from voltage curves with a multi-fidelity hierarchy. ") * 3
    parts = [paper(f"part-{n}", f"PINN surrogate of Li-ion battery models, Part {n}", abstract)
             for n in ("I", "II", "III")]
    other = paper("other", "Respecting causality in physics-informed neural networks",
                  "We change the loss of physics-informed neural networks to respect causality "
                  "in time, which fixes their training on chaotic systems. " * 3)
    digest = build_digest(subscriber("PINNs", max_papers=4), Ranker([*parts, other]), set(),
                          "e", NOW)
    assert digest is not None
    ids = [item.paper.id for item in digest.items]
    assert "other" in ids and sum(i.startswith("part-") for i in ids) == 1, ids


def battery_parts(*trending: str) -> list[Paper]:
    """Part I, II and III of one PINN paper (the ``trending`` ones hot on the papers site),
    and a different PINN paper."""
    abstract = ("We train physics-informed neural networks for battery models and infer their "
                "parameters from voltage curves with a multi-fidelity hierarchy. ") * 3
    parts = [Paper(id=f"part-{n}", title=f"PINN surrogate of Li-ion battery models, Part {n}",
                   abstract=abstract, **({"upvotes": 80, "listed_at": NOW - timedelta(hours=3)}
                                         if n in trending else {}))  # type: ignore[arg-type]
             for n in ("I", "II", "III")]
    other = paper("other", "Respecting causality in physics-informed neural networks",
                  "We change the loss of physics-informed neural networks to respect causality "
                  "in time, which fixes their training on chaotic systems. " * 3)
    return [*parts, other]


@pytest.mark.parametrize("trending", [("I",), ("I", "II")], ids=["one trending", "two trending"])
def test_a_trending_paper_and_its_near_duplicate_never_share_a_digest(
        trending: tuple[str, ...]) -> None:
    ranker = Ranker(battery_parts(*trending))
    digest = build_digest(subscriber("PINNs", max_papers=6), ranker, set(), "e", NOW)
    assert digest is not None
    assert digest.sections[0].trending and len(digest.sections) == 2
    ids = [item.paper.id for item in digest.items]
    assert "other" in ids and sum(i.startswith("part-") for i in ids) == 1, ids


class VersionsStub(StubRanker):
    """Fixed scores; papers whose ids share the part before "-v" are versions of one paper."""

    def near_duplicate(self, a: Paper, b: Paper) -> bool:
        return a.id.split("-v")[0] == b.id.split("-v")[0]


def test_trending_shows_one_version_of_a_paper_and_fills_its_slots_with_others() -> None:
    v1, v2, v3 = hot("x-v1", 90, 2), hot("x-v2", 80, 2), hot("x-v3", 70, 2)
    other = hot("y", 10, 2)
    # Across topics: each topic's best trending paper is another version of the same paper.
    across = VersionsStub({"a": [(v1, 1.0)], "b": [(v2, 1.0)]})
    digest = build_digest(subscriber("a", "b", max_papers=9), across, (), "e", NOW)
    assert digest.paper_ids == ["x-v1"]
    # Within a topic: three versions lead the list; the slots they would take go to others.
    within = VersionsStub({"t": [(v1, 1.0), (v2, 1.0), (v3, 1.0), (other, 1.0)]})
    digest = build_digest(subscriber("t", max_papers=9), within, (), "e", NOW)
    assert [(s.trending, [i.paper.id for i in s.items]) for s in digest.sections] == [
        (True, ["x-v1", "y"])]
