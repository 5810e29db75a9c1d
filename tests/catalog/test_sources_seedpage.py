from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from paths import SEEDS

from newsletter.catalog.sources.seedpage import BOILERPLATE, code_links, parse_seed_page
from newsletter.models import Link

TODAY = date(2026, 11, 23)
# Entries per file, counted by hand (one abstract line per entry: `awk 'length>=375' | wc -l`,
# then checked against the title lines).
ENTRIES = {
    "000_573b65b225b1358c.txt": 59,
    "001_dd63a28be7a97094.txt": 44,
    "002_9035318331f7238d.txt": 54,
    "003_aa43e9e5c698a25b.txt": 67,
    "004_9f00d24c8087b011.txt": 230,
}
ABSTRACT = ("We study a thing that matters. " * 12).strip()  # 370 characters, like a real one


def parse(name: str, today: date = TODAY):
    return parse_seed_page((SEEDS / name).read_text(encoding="utf-8"), f"seeds/{name}", today)


def by_title(papers, start: str):
    (paper,) = [p for p in papers if p.title.startswith(start)]
    return paper


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_seed_file_parses_cleanly_into_its_entry_count(name: str) -> None:
    papers, problems = parse(name)
    assert problems == []
    assert len(papers) == ENTRIES[name]
    assert all(p.sources == (f"seeds/{name}",) and p.url is None for p in papers)


def test_the_seed_files_hold_454_entries_of_392_distinct_titles() -> None:
    titles = [p.title for name in ENTRIES for p in parse(name)[0]]
    assert (len(titles), len(set(titles))) == (454, 392)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_no_boilerplate_meta_or_abstract_leaks_into_titles(name: str) -> None:
    for paper in parse(name)[0]:
        assert paper.title not in BOILERPLATE and not paper.title.startswith("Subscribe")
        assert "•" not in paper.title and "·" not in paper.title
        assert len(paper.title) <= 160 and len(paper.abstract) >= 375
        assert paper.title == " ".join(paper.title.split())


def test_the_title_glued_to_subscribe_in_004_comes_out_clean() -> None:
    papers, _ = parse("004_9f00d24c8087b011.txt")
    assert papers[0].title == "Learning to Branch for Multi-Task Learning"
    assert papers[0].id == "learning-to-branch-for-multi-task-learning"
    assert papers[0].abstract.startswith("Training multiple tasks jointly")


def test_004_has_no_page_date_so_no_date_at_all() -> None:
    papers, _ = parse("004_9f00d24c8087b011.txt")
    assert {(p.published, p.listed_at) for p in papers} == {(None, None)}


def test_002_entries_carry_their_own_author_count_and_date() -> None:
    papers, _ = parse("002_9035318331f7238d.txt")
    first = papers[0]
    assert first.title == "A Study of Bayesian Neural Network Surrogates for Bayesian Optimization"
    assert (first.author_count, first.published) == (3, date(2023, 5, 31))
    feature = by_title(papers, "Feature Learning in Infinite-Width")
    assert (feature.author_count, feature.published) == (2, date(2020, 11, 29))
    assert sum(p.author_count is not None for p in papers) == 52
    assert papers[-1].published == date(2019, 3, 23)


def test_the_page_date_is_a_listing_date_never_a_publication_date() -> None:
    papers, _ = parse("002_9035318331f7238d.txt")
    for start in ("Rethinking the shape convention", "Robust Layerwise Scaling Rules"):
        paper = by_title(papers, start)
        assert (paper.author_count, paper.published) == (None, None)
    listed = {(p.listed_at, p.listed_year_inferred) for p in papers}
    assert listed == {(datetime(2026, 10, 30, tzinfo=UTC), True)}  # "Oct 30": year guessed


def test_a_page_date_with_its_year_is_a_listing_date_with_a_known_year() -> None:
    text = f"Mar 14, 2025\nA title\n{ABSTRACT}\n"
    (paper,), _ = parse_seed_page(text, "p.txt", TODAY)
    assert (paper.listed_at, paper.listed_year_inferred) == (datetime(2025, 3, 14, tzinfo=UTC),
                                                             False)
    assert paper.published is None


@pytest.mark.parametrize(("today", "expected"), [
    (date(2026, 11, 23), date(2026, 3, 11)),
    (date(2026, 3, 11), date(2026, 3, 11)),
    (date(2026, 3, 10), date(2025, 3, 11)),
    (date(2026, 2, 1), date(2025, 3, 11)),
])
def test_a_page_date_without_year_is_listed_on_the_latest_such_day_up_to_today(today,
                                                                                expected) -> None:
    papers, _ = parse("000_573b65b225b1358c.txt", today)
    assert {p.listed_at.date() for p in papers} == {expected}
    assert {p.published for p in papers} == {None}


def test_an_entry_date_without_year_is_not_given_one() -> None:
    # Page "Oct 30", entry "Feb 23": no source says which year's Feb 23 it is.
    papers, _ = parse("002_9035318331f7238d.txt")
    for start in ("Exact Learning of Permutations", "Principled Approaches for Extending"):
        assert by_title(papers, start).published is None


def test_code_links_come_from_the_abstract() -> None:
    papers, _ = parse("001_dd63a28be7a97094.txt")
    cue = by_title(papers, "Empowering Low-Light Image Enhancer")
    assert cue.links == (Link("code", "https://github.com/zheng980629/CUE"),)
    assert cue.code_url == "https://github.com/zheng980629/CUE"


def test_code_links_are_cleaned_of_the_prose_around_them() -> None:
    papers, _ = parse("002_9035318331f7238d.txt")
    assert by_title(papers, "SineNet").code_url == "https://github.com/divelab/AIRS"  # "(...)."
    assert by_title(papers, "Feature Learning").code_url == "https://github.com/edwardjhu/TP4"
    papers, _ = parse("003_aa43e9e5c698a25b.txt")
    eq_net = [p for p in papers if "EQ-Net" in p.abstract]
    assert [p.links for p in eq_net] == [(Link("code", "https://github.com/xuke225/EQ-Net"),)]


def test_code_links_skip_other_hosts_and_duplicates() -> None:
    text = ("See https://github.com/a/b.git{https://github.com/a/b}, the site "
            "https://a.github.io/b/ and notgithub.com/x/y, weights at "
            "https://huggingface.co/org/model; gitlab.com/c/d. Also https://github.com.")
    assert code_links(text) == ["https://github.com/a/b", "https://huggingface.co/org/model",
                                "https://gitlab.com/c/d"]


def page(*lines: str) -> str:
    return "\n".join(lines)


def test_malformed_entries_become_problems_at_their_line_and_the_rest_parses() -> None:
    text = page(
        "new", "Subscribe", "Mar 11",                        # 1-3
        "Good One", ABSTRACT + " 1",                         # 4-5
        "Title Without Abstract",                            # 6
        "Good Two", ABSTRACT + " 2",                         # 7-8
        ABSTRACT + " stray",                                 # 9
        "Bad Authors", ABSTRACT + " 3", "  • many authors",  # 10-12
        "·", "May 31, 2023",                                 # 13-14
        "Bad Date", ABSTRACT + " 4", "  • 2 authors", "·",   # 15-18
        "May 32, 2023",                                      # 19
        "T" * 400, ABSTRACT + " 5",                          # 20-21
        "Good Three", ABSTRACT + " 6",                       # 22-23
        "Dangling Title",                                    # 24
    )
    papers, problems = parse_seed_page(text, "seeds/x.txt", TODAY)
    assert [p.title for p in papers] == ["Good One", "Good Two", "Good Three"]
    assert [p.location for p in problems] == [
        "seeds/x.txt:6", "seeds/x.txt:9", "seeds/x.txt:12", "seeds/x.txt:19",
        "seeds/x.txt:20", "seeds/x.txt:24"]
    messages = [p.message for p in problems]
    assert "'Title Without Abstract' has no abstract" in messages[0]
    assert "abstract with no title" in messages[1]
    assert "'many authors'" in messages[2] and "'Bad Authors'" in messages[2]
    assert "'May 32, 2023'" in messages[3]
    assert "400 characters is too long" in messages[4]
    assert "'Dangling Title' has no abstract" in messages[5]


def test_a_meta_line_before_any_entry_is_a_problem() -> None:
    papers, problems = parse_seed_page(page("Mar 11", "  • 3 authors", "Good", ABSTRACT),
                                       "s.txt", TODAY)
    assert [p.title for p in papers] == ["Good"]
    assert [p.location for p in problems] == ["s.txt:2"]


def test_a_bad_page_date_is_a_problem_and_entries_keep_no_date() -> None:
    papers, problems = parse_seed_page(page("Feb 30", "Good", ABSTRACT), "s.txt", TODAY)
    assert [(p.title, p.published) for p in papers] == [("Good", None)]
    assert [p.location for p in problems] == ["s.txt:1"]


def test_a_long_title_after_an_orphan_title_is_not_taken_for_its_abstract() -> None:
    long_title = "A " + "very " * 45 + "long title"  # 237 characters: title or abstract?
    text = page("Short One", ABSTRACT, "Orphan", long_title, ABSTRACT + ABSTRACT)
    papers, problems = parse_seed_page(text, "s.txt", TODAY)
    assert [p.title for p in papers] == ["Short One", long_title]
    assert [p.location for p in problems] == ["s.txt:3"]


@pytest.mark.parametrize("text", ["", "\n\n   \n"])
def test_an_empty_file_is_one_problem_at_line_1(text: str) -> None:
    papers, problems = parse_seed_page(text, "s.txt", TODAY)
    assert papers == [] and [p.location for p in problems] == ["s.txt:1"]
    assert "empty" in problems[0].message


def test_a_header_without_entries_is_a_problem() -> None:
    for text in (page("new", "Subscribe", "Mar 11"), page("", "Subscribe")):
        papers, problems = parse_seed_page(text, "s.txt", TODAY)
        assert papers == [] and [p.location for p in problems] == ["s.txt:1"]
        assert "no paper entries" in problems[0].message


def test_crlf_and_blank_lines_change_neither_entries_nor_line_numbers() -> None:
    name = "004_9f00d24c8087b011.txt"
    plain, _ = parse(name)
    text = (SEEDS / name).read_text(encoding="utf-8").replace("\n", "\r\n\r\n")
    spaced, problems = parse_seed_page(text + "\r\nDangling", "s.txt", TODAY)
    assert spaced == [replace(p, sources=("s.txt",)) for p in plain]
    # Line n of the file is now line 2n - 1; "Dangling" follows the last (462nd) line.
    assert [p.location for p in problems] == [f"s.txt:{2 * 462}"]


@pytest.mark.parametrize("name", ["000_573b65b225b1358c.txt", "004_9f00d24c8087b011.txt"])
def test_losing_any_one_line_costs_one_entry_and_one_problem(name: str) -> None:
    lines = (SEEDS / name).read_text(encoding="utf-8").split("\n")
    header = 2 if name.startswith("004") else 9  # boilerplate and page date
    entries = [i for i in range(header, len(lines)) if lines[i].strip()]
    assert len(entries) == 2 * ENTRIES[name]
    for i in entries[::7] + entries[-2:]:  # every 7th: titles and abstracts alike
        rest = lines[:i] + lines[i + 1:]
        papers, problems = parse_seed_page("\n".join(rest), "s", TODAY)
        assert len(papers) == ENTRIES[name] - 1, i
        # A lost abstract leaves its title without one; a lost title leaves a stray abstract.
        if len(lines[i]) >= 375:
            culprit = max(j for j in range(i) if rest[j].strip())
        else:
            culprit = min(j for j in range(i, len(rest)) if rest[j].strip())
        assert [p.location for p in problems] == [f"s:{culprit + 1}"], i
