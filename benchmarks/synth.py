"""A synthetic catalog and subscriber base for the send benchmark, written with the project's
own store functions.

Papers: every title and abstract is assembled from the real papers in ``seeds/`` (parsed by the
project's own seed-page parser), so the ranker sees real vocabulary, real abbreviations and real
topic co-occurrence. Each synthetic paper starts from one real paper (its topic), keeps most of
its abstract's sentences in a shuffled order and mixes in one to three sentences of other papers;
its title is the real title, recombined with the head or tail of another title. ``new_today``
papers were first seen today (a few with upvotes, so Trending sections appear); the rest were
first seen over the past two years, and the last ``history_days`` digests of each subscriber are
already in the ledger (``deliveries`` + ``sent_papers``), chosen from those older papers.

Subscribers: 1 to 4 topics each, drawn from about 200 topic phrases (the vocabulary's
abbreviations such as GNN, PINNs, NAS, NTK, INR, OT, their expansions, and common ML phrases) with
Zipf-like weights (the k-th most popular topic is drawn with weight 1 / k ** ZIPF_S), so a few
topics are shared by many people and the long tail by a few. Some names are not ASCII, some
people exclude a topic, read weekly, or live in another time zone.

Everything is seeded: the same arguments give the same database.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Sequence

from sqlalchemy import Engine, insert, text

from newsletter.catalog import ingest
from newsletter.catalog.sources.ids import title_key
from newsletter.models import Link, Paper, Subscriber
from newsletter.store import schema
from newsletter.store.catalog import save_papers

try:
    from newsletter.store.engine import connect
except ImportError:  # a snapshot from before store/engine.py (run with PYTHONPATH)
    from newsletter.store.schema import connect  # type: ignore[attr-defined,no-redef]
from newsletter.store.subscribers import load_subscribers, sync_subscribers

ZIPF_S = 1.07
TOPIC_COUNTS = (1, 2, 3, 4)
TOPIC_COUNT_WEIGHTS = (0.35, 0.35, 0.2, 0.1)

# The vocabulary's abbreviations (both spellings people use), their expansions, and phrases
# of the field. Order is popularity: the Zipf weights follow it.
_ALL_TOPICS: tuple[str, ...] = (
    "LLM", "diffusion models", "reinforcement learning", "GNN", "large language models",
    "computer vision", "transformers", "NLP", "federated learning", "graph neural networks",
    "contrastive learning", "PINNs", "self-supervised learning", "RL", "optimization",
    "Bayesian optimization", "NeRF", "ViT", "LoRA", "knowledge distillation",
    "physics-informed neural networks", "NAS", "quantization", "GAN", "VAE",
    "representation learning", "domain adaptation", "object detection", "semantic segmentation",
    "time series forecasting", "meta-learning", "few-shot learning", "continual learning",
    "adversarial robustness", "adversarial attacks", "explainability", "XAI", "interpretability",
    "Gaussian processes", "GP", "uncertainty quantification", "Bayesian neural networks", "BNN",
    "NTK", "neural tangent kernel", "INR", "implicit neural representations", "OT",
    "optimal transport", "PDE", "partial differential equations", "neural operators", "ODE",
    "neural ODEs", "MCMC", "variational inference", "normalizing flows", "generative models",
    "image generation", "video generation", "text-to-image", "speech recognition",
    "machine translation", "question answering", "retrieval-augmented generation",
    "instruction tuning", "in-context learning", "prompt engineering", "chain-of-thought",
    "multimodal learning", "vision-language models", "CLIP", "MoE", "mixture of experts",
    "SSM", "state space models", "CNN", "convolutional neural networks", "RNN", "LSTM",
    "attention mechanism", "graph contrastive learning", "GCN", "GAT", "MPNN",
    "message passing neural networks", "knowledge graphs", "recommender systems",
    "link prediction", "node classification", "molecular property prediction", "drug discovery",
    "protein structure prediction", "medical imaging", "image segmentation",
    "3D reconstruction", "point clouds", "pose estimation", "autonomous driving", "robotics",
    "imitation learning", "offline reinforcement learning", "multi-agent reinforcement learning",
    "policy gradient", "Q-learning", "model-based reinforcement learning", "bandits",
    "causal inference", "causal discovery", "fairness", "privacy", "differential privacy",
    "membership inference", "backdoor attacks", "out-of-distribution detection",
    "anomaly detection", "active learning", "semi-supervised learning", "transfer learning",
    "multi-task learning", "neural architecture search", "DARTS",
    "differentiable architecture search", "pruning", "model compression", "PTQ",
    "post-training quantization", "QAT", "binary neural networks", "SNN",
    "spiking neural networks", "neuromorphic computing", "edge computing", "hardware accelerators",
    "SGD", "stochastic gradient descent", "convergence analysis", "generalization bounds",
    "learning theory", "overparameterization", "infinite-width neural networks",
    "loss landscape", "implicit regularization", "sharpness-aware minimization", "SAM",
    "segment anything", "masked autoencoders", "MAE", "DEQ", "deep equilibrium models",
    "autodiff", "automatic differentiation", "HMC", "Hamiltonian Monte Carlo",
    "GFlowNet", "energy-based models", "score-based generative models", "denoising",
    "super-resolution", "image restoration", "low-light image enhancement", "style transfer",
    "audio generation", "speech synthesis", "music generation", "code generation",
    "mathematical reasoning", "theorem proving", "tabular data", "weather forecasting",
    "climate modeling", "scientific machine learning", "fluid dynamics", "surrogate models",
    "symbolic regression", "kernel methods", "dimensionality reduction", "clustering",
    "hyperparameter optimization", "AutoML", "data augmentation", "dataset distillation",
    "curriculum learning", "label noise", "long-tailed recognition", "zero-shot learning",
    "embodied AI", "world models", "planning", "tool use", "LLM agents", "alignment", "RLHF",
    "hallucination", "benchmarks", "evaluation", "wireless networks", "precoding",
    "power allocation", "signal processing", "compressed sensing", "inverse problems",
    "sparse coding", "dictionary learning", "matrix factorization", "tensor decomposition",
    "MLP", "DNN", "deep neural networks", "ReLU networks", "convex optimization",
    "adversarial training", "robust optimization", "distribution shift", "test-time adaptation",
)
# Topics no seed paper is about: a handful stay, at the unpopular end (people do subscribe to
# topics the catalog lacks; a digest of those alone is "nothing new", recorded as skipped).
_UNCOVERED = (
    "LoRA", "RLHF", "hallucination", "chain-of-thought", "anomaly detection",
    "retrieval-augmented generation", "instruction tuning", "prompt engineering",
    "protein structure prediction", "autonomous driving", "membership inference",
    "backdoor attacks", "out-of-distribution detection", "implicit regularization",
    "score-based generative models", "speech synthesis", "music generation",
    "mathematical reasoning", "weather forecasting", "climate modeling", "dataset distillation",
    "long-tailed recognition", "compressed sensing", "dictionary learning", "test-time adaptation",
    "video generation",
)
TOPICS: tuple[str, ...] = (
    tuple(t for t in _ALL_TOPICS if t not in _UNCOVERED) + _UNCOVERED[:5])

FIRST_NAMES = ("Ada", "Alan", "Emmy", "Grace", "Sofia", "Leonid", "Maryam", "Srinivasa", "Hedy",
               "Kurt", "José", "Zoë", "Søren", "François", "Łukasz", "Małgorzata", "Jürgen",
               "Björn", "Renée", "Nuño", "Chloé", "Ines", "Yuki", "Wei", "Priya", "Olu",
               "Aarav", "Fatima", "Mateo", "Amélie", "Dmitri", "Ngozi", "Hana", "Kofi")
LAST_NAMES = ("Lovelace", "Turing", "Noether", "Hopper", "Kovalevskaya", "Kantorovich",
              "Mirzakhani", "Ramanujan", "Lamarr", "Gödel", "Muñoz", "Øster", "Kierkegaard",
              "Dupré", "Kowalski", "Wiśniewska", "Schmidhuber", "Ångström", "Descartes",
              "García", "Lefèvre", "Müller", "Tanaka", "Zhang", "Patel", "Adeyemi", "Sharma",
              "Haddad", "Rossi", "Nakamura", "Ivanov", "Okafor", "Kim", "Mensah")
TIMEZONES = (("UTC", 0.4), ("Europe/Berlin", 0.15), ("America/New_York", 0.15),
             ("America/Los_Angeles", 0.1), ("Asia/Tokyo", 0.08), ("Asia/Kolkata", 0.07),
             ("Australia/Sydney", 0.05))

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
_TITLE_JOINTS = re.compile(r"(:\s+| via | for | with | in | using | through )")


def seed_papers(seeds_dir: Path) -> list[Paper]:
    """The real papers of the saved pages in ``seeds_dir``, parsed by the project's parser."""
    found: dict[str, Paper] = {}
    today = date.today()
    for path in sorted(seeds_dir.glob("*.txt")):
        papers, _problems = ingest.read_source_file(path, today)
        for paper in papers:
            if paper.abstract and paper.title:
                found.setdefault(title_key(paper.title), paper)
    if not found:
        raise SystemExit(f"no papers found in {seeds_dir}")
    return list(found.values())


def _title_parts(title: str) -> tuple[str, str]:
    """(head, joint + tail) at the first ':' / ' for ' / ' via ' ..., or (title, "")."""
    match = _TITLE_JOINTS.search(title)
    if not match or match.start() < 8:
        return title, ""
    return title[:match.start()], title[match.start():]


def synth_papers(seeds: Sequence[Paper], count: int, new_today: int, now: datetime,
                 rng: random.Random) -> list[Paper]:
    """``count`` papers, the first ``new_today`` of them first seen today, the rest older."""
    sentences = [_SENTENCE.split(" ".join(p.abstract.split())) for p in seeds]
    all_sentences = [s for group in sentences for s in group]
    parts = [_title_parts(p.title) for p in seeds]
    tails = [tail for _, tail in parts if tail]
    heads = [head for head, tail in parts if tail]
    authors_pool = [f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES]
    papers: list[Paper] = []
    seen_titles: set[str] = set()
    for n in range(count):
        base = rng.randrange(len(seeds))
        seed = seeds[base]
        head, tail = parts[base]
        roll = rng.random()
        if roll < 0.4 and tail:
            title = head + rng.choice(tails)  # same subject, another paper's angle
        elif roll < 0.7 and tail:
            title = rng.choice(heads) + tail
        else:
            title = seed.title if not tail else head + tail
        key = title_key(title)
        if key in seen_titles:  # keep titles unique, as a real catalog's are
            title = f"{title} ({n})"
        seen_titles.add(title_key(title))
        own = list(sentences[base])
        rng.shuffle(own)
        keep = own[:max(3, int(len(own) * rng.uniform(0.6, 1.0)))]
        for _ in range(rng.randint(1, 3)):
            keep.insert(rng.randrange(len(keep) + 1), rng.choice(all_sentences))
        abstract = " ".join(keep)

        if n < new_today:
            first_seen = now - timedelta(minutes=rng.randint(1, 600))
            published = first_seen.date() - timedelta(days=rng.choice((0, 0, 1, 1, 2)))
            listed = first_seen
            upvotes = int(rng.paretovariate(1.2) * 3) if rng.random() < 0.6 else None
            comments = rng.randint(0, 12) if upvotes and rng.random() < 0.3 else None
        else:
            first_seen = now - timedelta(days=rng.uniform(1, 730))
            published = first_seen.date() - timedelta(days=rng.randint(0, 30))
            listed = None
            upvotes = int(rng.paretovariate(1.5) * 2) if rng.random() < 0.2 else None
            comments = None
        yymm = f"{published.year % 100:02d}{published.month:02d}"
        arxiv = f"{yymm}.{n:05d}" if n < 100_000 else f"{yymm}.{n}"
        links: tuple[Link, ...] = ()
        if rng.random() < 0.35:
            links = (Link("code", f"https://github.com/lab{n % 977}/repo{n}"),)
        if rng.random() < 0.1:
            links = (*links, Link("project", f"https://lab{n % 977}.github.io/p{n}/"))
        authors = tuple(rng.sample(authors_pool, rng.randint(1, 8)))
        papers.append(Paper(
            id=arxiv, arxiv_id=arxiv, title=title, abstract=abstract, authors=authors,
            author_count=len(authors), published=published, url=f"https://arxiv.org/abs/{arxiv}",
            links=links, upvotes=upvotes, comments=comments, first_seen_at=first_seen,
            sources=("synthetic",), listed_at=listed,
            github_stars=rng.randint(1, 5000) if links and rng.random() < 0.5 else None,
            ai_summary=(keep[0] if rng.random() < 0.15 else None),
        ))
    return papers


def zipf_weights(n: int, s: float = ZIPF_S) -> list[float]:
    return [1 / (k + 1) ** s for k in range(n)]


def synth_subscribers(count: int, rng: random.Random, topics: Sequence[str] = TOPICS,
                      ) -> list[Subscriber]:
    cum = list(accumulate(zipf_weights(len(topics))))
    zones = [z for z, _ in TIMEZONES]
    zone_cum = list(accumulate(w for _, w in TIMEZONES))
    subs = []
    for n in range(count):
        k = rng.choices(TOPIC_COUNTS, TOPIC_COUNT_WEIGHTS)[0]
        chosen: list[str] = []
        while len(chosen) < k:
            topic = rng.choices(topics, cum_weights=cum)[0]
            if topic not in chosen:
                chosen.append(topic)
        exclude: tuple[str, ...] = ()
        if rng.random() < 0.05:
            exclude = (rng.choices(topics, cum_weights=cum)[0],)
            if exclude[0] in chosen:
                exclude = ()
        weekly = rng.random() < 0.1
        subs.append(Subscriber(
            email=f"reader{n:07d}@bench.example.org",
            name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            topics=tuple(chosen), exclude=exclude,
            max_papers=rng.choices((5, 8, 10, 12), (0.15, 0.2, 0.55, 0.1))[0],
            frequency="weekly" if weekly else "daily", weekday=rng.randrange(7) if weekly else 0,
            timezone=rng.choices(zones, cum_weights=zone_cum)[0],
            origin=f"synthetic:{n}", link_id=f"b{n:011d}", link_key=f"bench-key-{n}",
        ))
    return subs


def write_catalog(engine: Engine, papers: Sequence[Paper], now: datetime,
                  batch: int = 5000) -> None:
    """save_papers, a batch of inserts (one executemany) at a time."""
    for start in range(0, len(papers), batch):
        chunk = papers[start:start + batch]
        save_papers(engine, [(p, title_key(p.title)[:400]) for p in chunk], [], now=now)


def write_history(engine: Engine, subscribers: Sequence[Subscriber], papers: Sequence[Paper],
                  days: int, now: datetime, rng: random.Random) -> int:
    """The last ``days`` digests of every subscriber, as the ledger would hold them.

    Which papers: the subscriber's best older papers (the ranker's own choice over the papers
    first seen before today, computed once per topic combination), so that today's selection
    must skip what was sent, as it must in production. Returns the sent_papers rows written."""
    if days <= 0:
        return 0
    from newsletter.relevance.rank import Ranker

    cutoff = now - timedelta(hours=12)
    ranker = Ranker([p for p in papers if p.first_seen_at and p.first_seen_at < cutoff])
    memo: dict[tuple[tuple[str, ...], tuple[str, ...], int], list[str]] = {}
    deliveries: list[dict] = []
    sent: list[dict] = []
    delivery_id = rows = 0
    for sub in subscribers:
        key = (sub.topics, sub.exclude, sub.max_papers)
        picked = memo.get(key)
        if picked is None:
            excluded = set().union(*(ranker.matching_ids(t) for t in sub.exclude))
            picked = memo[key] = [m.paper.id for m in ranker.recommend(
                sub.topics, sub.max_papers * days, exclude_ids=excluded)]
        for day in range(days):
            ids = picked[day * sub.max_papers:(day + 1) * sub.max_papers]
            if not ids:
                break
            delivery_id += 1
            at = now - timedelta(days=day + 1)
            deliveries.append({
                "id": delivery_id, "subscriber_id": sub.id, "edition": at.date().isoformat(),
                "state": "sent", "attempts": 1, "message_id": f"<h{delivery_id}@bench>",
                "paper_count": len(ids), "created_at": at, "updated_at": at})
            sent.extend({"subscriber_id": sub.id, "paper_id": pid, "delivery_id": delivery_id,
                         "sent_at": at} for pid in ids)
        if len(sent) > 200_000:
            rows += _flush(engine, deliveries, sent)
    rows += _flush(engine, deliveries, sent)
    if engine.dialect.name == "postgresql":  # ids were given: move the sequence past them
        with engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('deliveries', 'id'), "
                              "(SELECT max(id) FROM deliveries))"))
    return rows


def _flush(engine: Engine, deliveries: list[dict], sent: list[dict]) -> int:
    rows = len(sent)
    with engine.begin() as conn:
        if deliveries:
            conn.execute(insert(schema.deliveries), deliveries)
        if sent:
            conn.execute(insert(schema.sent_papers), sent)
    deliveries.clear()
    sent.clear()
    return rows


def build_database(url: str, seeds_dir: Path, *, papers: int, new_today: int, subscribers: int,
                   history_days: int, now: datetime, seed: int = 7,
                   log=print) -> dict[str, float | int]:
    """Create and fill the database at ``url``; returns counts and the time each step took."""
    rng = random.Random(seed)
    info: dict[str, float | int] = {}
    t = time.perf_counter()
    engine = connect(url)
    seeds = seed_papers(seeds_dir)
    catalog_papers = synth_papers(seeds, papers, new_today, now, rng)
    info["seed_papers"] = len(seeds)
    info["generate_papers_s"] = time.perf_counter() - t
    t = time.perf_counter()
    write_catalog(engine, catalog_papers, now)
    info["papers"] = len(catalog_papers)
    info["save_papers_s"] = time.perf_counter() - t
    log(f"  catalog: {len(catalog_papers):,} papers ({new_today} new today) from "
        f"{len(seeds)} real seed papers, saved in {info['save_papers_s']:.1f}s")
    t = time.perf_counter()
    subs = synth_subscribers(subscribers, rng)
    report = sync_subscribers(engine, subs)
    info["subscribers"] = report.added
    info["sync_subscribers_s"] = time.perf_counter() - t
    log(f"  subscribers: {report.added:,} synced in {info['sync_subscribers_s']:.1f}s "
        f"({len({t for s in subs for t in s.topics})} distinct topics, "
        f"{len({s.topics for s in subs}):,} distinct topic lists)")
    t = time.perf_counter()
    stored = {s.email: s.id for s in load_subscribers(engine)}
    subs = [replace(s, id=stored[s.email]) for s in subs]
    info["sent_papers_rows"] = write_history(engine, subs, catalog_papers, history_days, now, rng)
    info["history_s"] = time.perf_counter() - t
    if history_days:
        log(f"  ledger history: {history_days} earlier digest(s) each, "
            f"{info['sent_papers_rows']:,} sent_papers rows, in {info['history_s']:.1f}s")
    engine.dispose()
    return info


def now_utc() -> datetime:
    return datetime.now(UTC)
