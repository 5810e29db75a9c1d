from __future__ import annotations

import itertools
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from paths import FIXTURES, SEEDS
from sqlalchemy import Engine

from newsletter.catalog.ingest import READERS, expand_paths, ingest, merge, paper_slug, title_key
from newsletter.catalog.sources.fetch import FetchLimits
from newsletter.models import Link, Paper
from newsletter.store.catalog import count_papers, load_papers, save_papers
from newsletter.store.engine import connect

T1 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
ABSTRACT = ("We study a thing that matters. " * 12).strip()


@pytest.fixture
def sqlite(tmp_path: Path) -> Engine:
    return connect(f"sqlite:///{tmp_path}/t.db")


def write(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# -- normalization ---------------------------------------------------------------------------


def test_title_key_folds_accents_case_punctuation_and_spaces() -> None:
    assert title_key("  Light  Schrödinger Bridge!") == "light schrodinger bridge"
    assert title_key("via Łojasiewicz Gradient") == "via lojasiewicz gradient"
    assert title_key("What’s in a Prior? Two-layer_ReLU") == "whats in a prior two layer relu"
    assert title_key("Two-Layer Nets") == title_key("two layer nets")


def test_title_key_keeps_letters_without_ascii_form_apart() -> None:
    assert title_key("α-Net") != title_key("β-Net")


def test_paper_slug_is_ascii_words_joined_by_dashes() -> None:
    assert paper_slug("What's in a Prior? Learned Proximal Networks") == \
        "whats-in-a-prior-learned-proximal-networks"
    assert paper_slug("两个").startswith("paper-")


def test_a_long_slug_is_cut_at_a_word_with_a_hash_that_keeps_titles_apart() -> None:
    base = "Efficient Global Optimization of Two-layer ReLU Networks: Quadratic-time Algorithms "
    one, two = paper_slug(base + "and Adversarial Training"), paper_slug(base + "and More")
    assert len(one) <= 100 and len(two) <= 100 and one != two
    assert one.startswith("efficient-global-optimization-of-two-layer-relu-networks-quadratic")
    assert one.rsplit("-", 1)[0].endswith("-and")  # whole words only, then the hash


# -- merge -----------------------------------------------------------------------------------


OLD = Paper(id="old-id", title="A Paper", abstract="short", author_count=3,
            published=date(2024, 5, 2), links=(Link("code", "https://github.com/a/b"),),
            upvotes=10, comments=None, first_seen_at=T1, sources=("seeds/a.txt",))
NEW = Paper(id="new-id", title="A paper", abstract="a much longer abstract",
            arxiv_id="2405.00001", authors=("Ada", "Bob"), author_count=None,
            published=date(2024, 5, 1), url="https://arxiv.org/abs/2405.00001",
            links=(Link("code", "https://github.com/a/b"), Link("project", "https://p.io")),
            upvotes=4, comments=7, sources=("hf.json", "seeds/a.txt"))


def test_merge_keeps_the_richest_of_every_field() -> None:
    merged = merge(OLD, NEW)
    assert merged == Paper(
        id="old-id", title="A Paper", abstract="a much longer abstract", arxiv_id="2405.00001",
        authors=("Ada", "Bob"), author_count=3, published=date(2024, 5, 1),
        url="https://arxiv.org/abs/2405.00001",
        links=(Link("code", "https://github.com/a/b"), Link("project", "https://p.io")),
        upvotes=10, comments=7, first_seen_at=T1, sources=("seeds/a.txt", "hf.json"))


def test_merge_does_not_lose_what_only_the_old_paper_knew() -> None:
    merged = merge(NEW, OLD)
    assert merged.id == "new-id" and merged.first_seen_at == T1
    assert (merged.abstract, merged.authors, merged.author_count) == (
        "a much longer abstract", ("Ada", "Bob"), 3)
    assert (merged.published, merged.upvotes) == (date(2024, 5, 1), 10)
    assert merge(OLD, replace(NEW, published=None)).published == date(2024, 5, 2)


# -- ingest ----------------------------------------------------------------------------------


def test_ingesting_all_seeds_stores_the_392_distinct_papers_then_changes_nothing(
        engine: Engine) -> None:
    first = ingest(engine, [SEEDS], T1)
    assert (first.new, first.updated, first.unchanged, first.rejected, first.files) == (
        392, 0, 0, [], 5)
    assert count_papers(engine) == 392
    second = ingest(engine, [SEEDS], T2)
    assert (second.new, second.updated, second.unchanged, second.rejected) == (0, 0, 392, [])
    assert {p.first_seen_at for p in load_papers(engine)} == {T1}


def test_a_paper_on_several_pages_is_stored_once_with_every_source(sqlite: Engine) -> None:
    ingest(sqlite, [SEEDS], T1)
    papers = {p.title: p for p in load_papers(sqlite)}
    biper = next(p for title, p in papers.items() if title.startswith("BiPer"))
    assert [Path(s).name for s in biper.sources] == [
        "000_573b65b225b1358c.txt", "002_9035318331f7238d.txt", "003_aa43e9e5c698a25b.txt",
        "004_9f00d24c8087b011.txt"]
    assert biper.code_url == "https://github.com/edmav4/BiPer"
    # 002 dates the paper itself (Apr 1, 2024); 000 and 003 only say when they were saved.
    assert (biper.author_count, biper.published) == (4, date(2024, 4, 1))


def test_a_longer_abstract_on_reingest_updates_the_paper_and_keeps_first_seen(
        sqlite: Engine, tmp_path: Path) -> None:
    page = write(tmp_path / "p" / "a.txt", "First", ABSTRACT, "Second", ABSTRACT)
    ingest(sqlite, [page], T1)
    write(page, "First", ABSTRACT + " And more.", "Second", ABSTRACT)
    report = ingest(sqlite, [page], T2)
    assert (report.new, report.updated, report.unchanged) == (0, 1, 1)
    first = next(p for p in load_papers(sqlite) if p.title == "First")
    assert first.abstract.endswith("And more.") and first.first_seen_at == T1


def test_titles_that_differ_only_in_case_and_punctuation_are_one_paper(
        sqlite: Engine, tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.txt", "Two-Layer Nets: A Study", ABSTRACT)
    write(tmp_path / "d" / "b.txt", "Two layer nets - a study", ABSTRACT + " Code: "
          "https://github.com/x/y.", "  • 4 authors", "·", "Jan 2, 2020")
    report = ingest(sqlite, [tmp_path / "d"], T1)
    assert (report.new, report.files) == (1, 2)
    (paper,) = load_papers(sqlite)
    assert (paper.id, paper.title) == ("two-layer-nets-a-study", "Two-Layer Nets: A Study")
    assert (paper.author_count, paper.published, paper.code_url) == (
        4, date(2020, 1, 2), "https://github.com/x/y")
    assert paper.sources == ("d/a.txt", "d/b.txt")


def test_a_stored_arxiv_paper_absorbs_a_seed_entry_with_its_title(
        sqlite: Engine, tmp_path: Path) -> None:
    known = Paper(id="2401.00001", arxiv_id="2401.00001", title="Known Paper", abstract="x")
    save_papers(sqlite, new=[(known, title_key(known.title))], changed=[], now=T1)
    report = ingest(sqlite, [write(tmp_path / "s" / "a.txt", "Known paper", ABSTRACT)], T2)
    assert (report.new, report.updated) == (0, 1)
    (paper,) = load_papers(sqlite)
    assert (paper.id, paper.abstract, paper.first_seen_at) == ("2401.00001", ABSTRACT, T1)


def test_dedupe_prefers_arxiv_ids_and_keeps_different_ids_apart(
        sqlite: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_reader(data: bytes, source: str, today: date):
        papers = []
        for line in data.decode().splitlines():
            arxiv_id, title = line.split(" ", 1)
            papers.append(Paper(id=arxiv_id, arxiv_id=arxiv_id, title=title, abstract=title,
                                sources=(source,)))
        return papers, []

    monkeypatch.setitem(READERS, ".ids", fake_reader)
    ids = tmp_path / "a.ids"
    ids.write_text("2401.1 Same Title\n2401.2 Same Title\n2401.1 Renamed in v2\n")
    report = ingest(sqlite, [ids], T1)
    assert report.new == 2
    assert sorted(p.id for p in load_papers(sqlite)) == ["2401.1", "2401.2"]


def test_the_same_file_as_relative_and_absolute_path_is_one_source(
        sqlite: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seed = "001_dd63a28be7a97094.txt"
    (tmp_path / "seeds").mkdir()
    shutil.copy(SEEDS / seed, tmp_path / "seeds" / seed)
    assert ingest(sqlite, [Path("seeds")], T1).new == 44
    again = ingest(sqlite, [tmp_path / "seeds" / seed, Path("seeds") / seed], T2)
    assert (again.files, again.new, again.updated, again.unchanged) == (1, 0, 0, 44)
    assert {p.sources for p in load_papers(sqlite)} == {(f"seeds/{seed}",)}


def test_bad_files_are_problems_naming_the_file_and_the_rest_is_ingested(
        sqlite: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    good = write(tmp_path / "in" / "good.txt", "Good", ABSTRACT)
    write(tmp_path / "in" / "broken.txt", "Broken", ABSTRACT, "Orphan title")
    (tmp_path / "in" / "binary.txt").write_bytes(b"Title\n\x00\x01\x02")
    (tmp_path / "in" / "latin1.txt").write_bytes(b"Title\nAbstract\nCaf\xe9 title\n")
    (tmp_path / "in" / "empty.txt").write_bytes(b"")
    unknown = write(tmp_path / "notes.pdf", "%PDF-1.4 not a catalog source")
    write(tmp_path / "in" / "README.md", "not a source")  # directories skip unknown types
    ticks: list[int] = []
    report = ingest(sqlite, [tmp_path / "in", unknown, tmp_path / "gone.txt", good], T1,
                    progress=ticks.append)
    assert sorted(p.title for p in load_papers(sqlite)) == ["Broken", "Good"]
    assert (report.new, report.files, ticks) == (2, 6, [1] * 6)
    where = {p.location: p.message for p in report.rejected}
    assert sorted(where) == ["gone.txt", "in/binary.txt:2", "in/broken.txt:3",
                             "in/empty.txt:1", "in/latin1.txt:3", "notes.pdf"]
    assert "unknown file type '.pdf'" in where["notes.pdf"]
    assert "no such file" in where["gone.txt"]
    assert "binary" in where["in/binary.txt:2"]
    assert "not UTF-8" in where["in/latin1.txt:3"]


def test_expand_paths_lists_directories_sorted_and_each_file_once(tmp_path: Path) -> None:
    for name in ("b.txt", "a.txt", ".hidden.txt", "notes.md"):
        write(tmp_path / name, "x")
    files = expand_paths([tmp_path, tmp_path / "a.txt", tmp_path / "gone.txt"])
    assert [f.name for f in files] == ["a.txt", "b.txt"]


# -- richer fields -----------------------------------------------------------------------------


def test_merge_keeps_the_highest_counts_the_richest_extras_and_the_first_listing() -> None:
    listed = datetime(2026, 11, 22, 13, tzinfo=UTC)
    hf = Paper(id="x", title="X", abstract="", upvotes=87, comments=6, github_stars=412,
               ai_summary="Short.", keywords=("a",), listed_at=listed,
               links=(Link("code", "https://github.com/Example/Repo"),), thumbnail="https://t/1")
    later = Paper(id="y", title="X", abstract="", upvotes=80, comments=9, clicks=3,
                  github_stars=400, ai_summary="A longer summary.", keywords=("a", "b"),
                  listed_at=datetime(2026, 11, 23, tzinfo=UTC),
                  links=(Link("code", "https://github.com/example/repo/"),))
    merged = merge(hf, later)
    assert (merged.upvotes, merged.comments, merged.clicks, merged.github_stars) == (87, 9, 3, 412)
    assert (merged.ai_summary, merged.keywords) == ("A longer summary.", ("a", "b"))
    assert (merged.listed_at, merged.thumbnail) == (listed, "https://t/1")
    assert merged.links == (Link("code", "https://github.com/Example/Repo"),)  # one repository


def test_a_listing_whose_year_a_source_stated_wins_over_an_earlier_guessed_one() -> None:
    seed = Paper(id="x", title="X", abstract="", listed_year_inferred=True,
                 listed_at=datetime(2026, 3, 14, tzinfo=UTC))  # "Mar 14" on a saved page
    hf = Paper(id="y", title="X", abstract="", listed_at=datetime(2026, 11, 22, 13, tzinfo=UTC))
    for merged in (merge(seed, hf), merge(hf, seed)):
        assert (merged.listed_at, merged.listed_year_inferred) == (hf.listed_at, False)
    earlier = replace(seed, listed_at=datetime(2025, 3, 14, tzinfo=UTC))
    assert merge(seed, earlier).listed_at == earlier.listed_at  # both guessed: the earliest
    assert merge(seed, earlier).listed_year_inferred


# -- sources over HTTP -------------------------------------------------------------------------

DAY = {  # path on the test server -> (fixture, content type); no path has a telling suffix
    "seed": ("/seeds/page.txt", "seed_page.txt", "text/plain"),
    "atom": ("/api/query?search_query=cat:cs.LG", "arxiv_api.xml", "application/atom+xml"),
    "rss": ("/rss/cs.LG", "arxiv_rss.xml", "application/rss+xml"),
    "hf": ("/api/daily_papers?date=2026-11-22", "hf_daily.json", "application/json"),
    "jsonl": ("/export/papers", "papers.jsonl", "application/x-ndjson"),
}
FORWARD = "2611.01234"


def serve_day(server, *kinds: str) -> list[str]:
    """Serve the fixture day's sources; their URLs, in ``kinds`` order (default: all)."""
    return [server.serve(DAY[k][0], FIXTURES / DAY[k][1], DAY[k][2]) for k in kinds or DAY]


def test_every_format_is_read_from_urls_and_the_day_is_ten_distinct_papers(
        engine: Engine, http_server) -> None:
    urls = serve_day(http_server)
    report = ingest(engine, urls, T1)
    assert (report.new, report.rejected, report.files, report.not_modified) == (10, [], 5, 0)
    papers = {p.id: p for p in load_papers(engine)}
    assert set(papers) == {
        FORWARD, "2611.02345", "2611.03456", "2611.05678", "2611.07890", "2611.06789",
        "2405.11111", "learning-to-branch-in-mixed-integer-programs-with-graph-transformers",
        "sparse-autoencoders-for-protein-language-models", "tiny-recursive-models-for-sudoku"}
    forward = papers[FORWARD]
    assert forward.sources == tuple(urls[:2]) + (urls[3], urls[4])  # not in the RSS listing
    assert (forward.upvotes, forward.comments, forward.clicks, forward.github_stars) == (
        87, 6, 9, 412)
    assert forward.ai_summary.startswith("ForwardGNN") and forward.keywords
    assert papers["2611.02345"].sources == (urls[2], urls[3])  # RSS v1 and HF: one paper


@pytest.mark.parametrize("order", list(itertools.permutations(["seed", "atom", "hf"])))
def test_a_seed_page_an_arxiv_v2_entry_and_the_hf_api_make_one_paper(
        sqlite: Engine, http_server, order: tuple[str, ...]) -> None:
    urls = serve_day(http_server, *order)
    ingest(sqlite, urls, T1)
    (forward,) = [p for p in load_papers(sqlite) if "graph neural networks" in
                  p.title.lower() and "forward" in p.title.lower()]
    # The seed page has no arXiv id: its title joins it to the others, in whatever order.
    assert (forward.id, forward.arxiv_id) == (FORWARD, FORWARD)
    assert forward.sources == tuple(urls)
    assert forward.upvotes == 87 and forward.listed_at == datetime(2026, 11, 22, 13, tzinfo=UTC)
    assert forward.links[0] == Link("code", "https://github.com/example/forwardgnn")
    assert [l.kind for l in forward.links] == ["code", "project"]  # the code link once
    assert forward.published == date(2026, 11, 20)  # the paper's date, not the page's


def test_a_stored_seed_paper_gains_the_arxiv_id_later_but_keeps_its_id(
        sqlite: Engine, http_server) -> None:
    seed, atom, hf = serve_day(http_server, "seed", "atom", "hf")
    ingest(sqlite, [seed], T1)
    report = ingest(sqlite, [atom, hf], T2)
    assert report.rejected == []
    forward = next(p for p in load_papers(sqlite) if p.arxiv_id == FORWARD)
    # The ledger records sent papers by id: a stored id never changes.
    assert (forward.id, forward.first_seen_at) == ("forward-learning-of-graph-neural-networks", T1)
    assert (forward.sources, forward.upvotes) == ((seed, atom, hf), 87)


def test_ingesting_unchanged_urls_again_asks_conditionally_and_changes_nothing(
        engine: Engine, http_server) -> None:
    urls = serve_day(http_server)
    ingest(engine, urls, T1)
    before = load_papers(engine)
    again = ingest(engine, urls, T2)
    assert (again.new, again.updated, again.unchanged, again.not_modified) == (0, 0, 0, 5)
    assert load_papers(engine) == before
    for path, _, _ in DAY.values():
        first, second = http_server.requests_to(path)
        assert "If-None-Match" not in first.headers
        assert second.headers["If-None-Match"] == http_server.routes[path].etag
        assert second.headers["If-Modified-Since"]


def test_failing_urls_are_one_problem_each_and_the_other_sources_go_on(
        sqlite: Engine, http_server, tmp_path: Path) -> None:
    (hf,) = serve_day(http_server, "hf")
    broken = http_server.fail("/api/daily_papers?date=2026-11-21", 500)
    slow = http_server.stall("/rss/stat.ML")
    gone = http_server.fail("/rss/old", 404)
    page = write(tmp_path / "page.txt", "Local Paper", ABSTRACT)
    ticks: list[int] = []
    report = ingest(sqlite, [broken, slow, hf, gone, page], T1, progress=ticks.append,
                    limits=FetchLimits(timeout=0.5))
    assert (report.new, report.files, ticks) == (6, 5, [1] * 5)
    where = {p.location: p.message for p in report.rejected}
    assert list(where) == [broken, slow, gone]
    assert where[broken].startswith("the server answered 500 Internal Server Error")
    assert where[slow].startswith("no answer within 0.5 s")
    assert "404 Not Found: check the URL" in where[gone]


def test_malformed_sources_are_rejected_with_their_position_and_nothing_stored_is_lost(
        engine: Engine, http_server) -> None:
    urls = serve_day(http_server, "atom", "rss", "hf", "jsonl")
    ingest(engine, urls, T1)
    before = load_papers(engine)
    broken = {"atom": "arxiv_api_broken.xml", "rss": "arxiv_rss_broken.xml",
              "hf": "hf_daily_broken.json", "jsonl": "papers_broken.jsonl"}
    for kind, name in broken.items():
        http_server.serve(DAY[kind][0], FIXTURES / name, DAY[kind][2])
    report = ingest(engine, urls, T2)
    atom, rss, hf, jsonl = urls
    assert [p.location for p in report.rejected] == [
        f"{atom}:24:7", f"{rss}:24:18", f"{hf}:63:16",
        f"{jsonl}:2", f"{jsonl}:3", f"{jsonl}:4", f"{jsonl}:5", f"{jsonl}:6"]
    assert "mismatched tag" in report.rejected[0].message
    assert "not valid JSON" in report.rejected[2].message
    assert report.new == 1  # "A Fine Paper", the one good line of the broken JSONL
    after = {p.id: p for p in load_papers(engine)}
    assert [after[p.id] for p in before] == before


def test_an_unusable_answer_is_not_remembered_so_the_fixed_one_is_read_in_full(
        sqlite: Engine, http_server) -> None:
    path = DAY["hf"][0]
    url = http_server.serve(path, FIXTURES / "hf_daily_broken.json")
    assert ingest(sqlite, [url], T1).rejected
    http_server.serve(path, FIXTURES / "hf_daily.json")
    fixed = ingest(sqlite, [url], T2)
    assert (fixed.new, fixed.rejected) == (5, [])
    assert "If-None-Match" not in http_server.requests_to(path)[1].headers


def test_a_url_passed_as_a_path_still_works_and_is_read_once(
        sqlite: Engine, http_server) -> None:
    (url,) = serve_day(http_server, "hf")
    assert str(Path(url)) != url  # pathlib collapses "http://" to "http:/"
    assert expand_paths([Path(url), url]) == [url]
    assert ingest(sqlite, [Path(url)], T1).new == 5
