from __future__ import annotations

from newsletter.library import MAX_PAPERS, CatalogLookup, clean_latex, match_library, parse_library
from newsletter.models import OwnPaper, Paper


def keys(papers: list[OwnPaper]) -> list[str]:
    return [paper.key for paper in papers]


def test_arxiv_ids_and_urls_of_both_styles_are_read_without_their_version() -> None:
    text = ("2401.01234v2, arXiv:2312.00001\n"
            "https://arxiv.org/abs/hep-th/9901001v3\n"
            "# a comment line\n"
            "https://arxiv.org/pdf/2402.05555v1.pdf  # my best one\n"
            "math.CO/0309136\n"
            "10.48550/arXiv.2403.07777\n")
    papers, problems = parse_library(text, "upload")
    assert problems == []
    assert keys(papers) == ["arxiv:2401.01234", "arxiv:2312.00001", "arxiv:hep-th/9901001",
                            "arxiv:2402.05555", "arxiv:math.CO/0309136", "arxiv:2403.07777"]


def test_a_line_that_is_not_an_id_is_one_problem_with_its_line_and_the_rest_is_kept() -> None:
    papers, problems = parse_library("2401.01234\nmy favourite paper\n2401.05678\n", "ids.txt")
    assert keys(papers) == ["arxiv:2401.01234", "arxiv:2401.05678"]
    (problem,) = problems
    assert problem.location == "ids.txt:2"
    assert "not an arXiv id or URL: 'my', 'favourite', 'paper'" in problem.message


def test_an_id_in_some_other_sites_url_is_not_taken_for_an_arxiv_id() -> None:
    papers, problems = parse_library("https://example.org/post/2401.01234\n", "ids.txt")
    assert papers == []
    assert [p.location for p in problems] == ["ids.txt:1"]


def test_a_paper_listed_twice_is_kept_once() -> None:
    papers, _ = parse_library("2401.01234\n2401.01234v3\narXiv:2401.01234\n", "ids.txt")
    assert keys(papers) == ["arxiv:2401.01234"]


BIB = r"""% exported by Zotero
@article{vaswani2017attention,
  title = {Attention Is {All} You Need: {Schr{\"o}dinger} \emph{Transformers}},
  author = {Vaswani, Ashish and Shazeer, Noam},
  abstract = {The dominant sequence transduction models are based on
              complex recurrent networks, $O(n^2)$ in {\'e}tude.},
  eprint = {1706.03762v5},
  archivePrefix = {arXiv},
}

@misc{zotero_doi,
  title = {A Zotero export with the arXiv DOI},
  doi = {10.48550/arXiv.2401.11111},
  url = {http://arxiv.org/abs/2401.11111v1},
}

@inproceedings{journal_only,
  title = "Scholar style",
  journal = {arXiv preprint arXiv:2312.22222},
}

@article{no_arxiv,
  title = {A journal paper},
  doi = {10.1000/XYZ.1},
  abstract = {Its abstract.},
}

@book{citekey_only, title = {Only a title}}
"""


def test_bibtex_entries_give_arxiv_ids_clean_titles_and_abstracts() -> None:
    papers, problems = parse_library(BIB, "lib.bib")
    assert problems == []
    assert keys(papers) == ["arxiv:1706.03762", "arxiv:2401.11111", "arxiv:2312.22222",
                            "doi:10.1000/xyz.1", "citekey_only"]
    first = papers[0]
    assert first.title == "Attention Is All You Need: Schrödinger Transformers"
    assert first.abstract == ("The dominant sequence transduction models are based on complex "
                              "recurrent networks, $O(n^2)$ in étude.")
    assert papers[3].abstract == "Its abstract."
    assert papers[4].title == "Only a title"


def test_a_broken_bibtex_entry_is_one_problem_with_its_line_and_the_others_still_load() -> None:
    text = ("@article{good1, title={First}}\n"
            "@misc{broken,\n"
            "  title = {Never closed\n"
            "@article{good2, title={Second}, eprint={2401.01234}}\n"
            "@article{empty, author={Nobody}}\n"
            "@article{twice, title={x}, title={y}}\n")
    papers, problems = parse_library(text, "lib.bib")
    assert [p.title for p in papers] == ["First", "Second"]
    assert papers[1].key == "arxiv:2401.01234"
    assert sorted(p.location for p in problems) == ["lib.bib:2", "lib.bib:5", "lib.bib:6"]
    messages = {p.location: p.message for p in problems}
    assert "not a complete BibTeX entry" in messages["lib.bib:2"]
    assert "neither a title nor an arXiv id" in messages["lib.bib:5"]
    assert "title twice" in messages["lib.bib:6"]


def test_an_eprint_of_another_archive_is_not_read_as_arxiv() -> None:
    papers, _ = parse_library("@misc{hal, title={T}, eprint={2401.01234}, "
                              "archivePrefix={HAL}}\n", "lib.bib")
    assert keys(papers) == ["hal"]


def test_garbage_never_raises() -> None:
    for text in ["@", "@article{", "@article{x, title = {\\\\{{{}", "\x00\x01", "{}}}@{",
                 "@string{a = {b}} @article{k, title = a # {c}}", "\\" * 50]:
        parse_library(text, "junk")


def test_a_huge_library_keeps_the_first_papers_and_says_so() -> None:
    text = "\n".join(f"2401.{n:05d}" for n in range(MAX_PAPERS + 5))
    papers, problems = parse_library(text, "big.txt")
    assert len(papers) == MAX_PAPERS
    assert [p.location for p in problems] == ["big.txt"]


def test_clean_latex_keeps_math_and_drops_markup() -> None:
    assert (clean_latex(r"{GAN}s for \textit{PDE}s --- 100\% $\alpha$")
            == "GANs for PDEs — 100% $\\alpha$")


CATALOG = [
    Paper(id="2401.01234", title="Graph Neural Networks for PDEs", abstract="a",
          arxiv_id="2401.01234"),
    Paper(id="attention-is-all-you-need", title="Attention is all you need", abstract="b"),
]


def test_papers_match_the_catalog_by_arxiv_id_then_by_title() -> None:
    own = [OwnPaper(key="arxiv:2401.01234", title=""),
           OwnPaper(key="vaswani", title="Attention Is All You Need!"),
           OwnPaper(key="arxiv:2499.99999", title=""),
           OwnPaper(key="other", title="Something else", abstract="kept", paper_id="stale")]
    matched = match_library(own, CatalogLookup(CATALOG))
    assert [p.paper_id for p in matched] == ["2401.01234", "attention-is-all-you-need",
                                             None, None]
    assert matched[0].title == "Graph Neural Networks for PDEs"  # a bare id gets its title
    assert matched[1].title == "Attention Is All You Need!"  # the reader's own is kept
    assert matched[3].abstract == "kept"
    assert match_library(own, CATALOG) == matched


def test_a_byte_order_mark_before_the_first_entry_costs_no_paper() -> None:
    # Windows editors save UTF-8 with a BOM; read as text it is U+FEFF glued to the first line.
    bib = "\ufeff@article{a, title = {T}, eprint = {2401.01234}}\n"
    assert parse_library(bib, "lib.bib") == ([OwnPaper(key="arxiv:2401.01234", title="T")], [])
    assert parse_library("\ufeff2401.01234\n2401.05678\n", "ids.txt") == (
        [OwnPaper(key="arxiv:2401.01234", title=""), OwnPaper(key="arxiv:2401.05678", title="")],
        [])
