"""Per-message CPU of the three composing and sending stages, without a database.

    python benchmarks/compose_bench.py                  # render, message, send: ms per call
    python benchmarks/compose_bench.py --dump out.txt   # every rendered part and message, for diffs

Digests are built directly (no ranker): a pool of synthetic papers assembled from the real
seed pages (``synth.py``), and subscribers with synth's non-ASCII names and Zipf-weighted
topics, each getting ~10 papers in 3 sections (a Trending one for some), drawn from the pool so
that, as in a real run, the same paper shows up in many digests. Then, per call:

- ``render``: ``Renderer.render`` (HTML + text), a fresh Renderer for each repeat, so its
  caches start cold every time (the pool is small next to the calls, as in a real run);
- ``message``: ``Letterhead.build`` on those renderings, a fresh Letterhead for each repeat;
  with ``--dkim``, again with DKIM signing (``signing.py``, a fresh 2048-bit key);
- ``send``: the messages through ``SmtpTransport`` (4 connections) into the lean sink
  (``sink.py``, another process): the CPU spent inside ``SmtpTransport.send``'s coroutine (as
  send_bench.py measures it) and the whole client process's CPU per message (event loop and
  aiosmtplib's reply callbacks included).

Each figure is the median over ``--repeat`` runs of every digest. To measure another copy of the
package (the code before a change), put it first on ``PYTHONPATH``: its own templates are used.
``--dump`` writes each digest's subject, text, HTML and message (Message-ID and boundary blanked)
so two copies can be compared byte for byte.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synth  # noqa: E402
from send_bench import Sink, Stages  # noqa: E402

from newsletter.models import Digest, DigestItem, Outgoing, Paper, RenderedDigest, Section  # noqa: E402

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
REASONS = ("matches: {t} (title)", "matches: {t} → {x} (title, abstract)",
           "matches: {t} (abstract); 12 upvotes", "trending: {u} upvotes in 2 days; matches: {t}")


def make_digests(count: int, pool_size: int, seed: int) -> list[Digest]:
    rng = random.Random(seed)
    seeds = synth.seed_papers(HERE.parent / "seeds")
    pool = synth.synth_papers(seeds, pool_size, pool_size // 3, NOW, rng)
    subscribers = synth.synth_subscribers(count, rng)
    digests = []
    for sub in subscribers:
        topics = list(sub.topics)
        while len(topics) < 3:
            topics.append(rng.choice(synth.TOPICS))
        papers = rng.sample(pool, rng.randint(8, 12))
        trending = rng.random() < 0.3
        sections = []
        cuts = sorted(rng.sample(range(1, len(papers)), 2))
        groups = [papers[:cuts[0]], papers[cuts[0]:cuts[1]], papers[cuts[1]:]]
        for n, (topic, group) in enumerate(zip(topics, groups)):
            items = tuple(
                DigestItem(paper, 1.0, topic, rng.choice(REASONS).format(
                    t=topic, x=rng.choice(synth.TOPICS), u=rng.randint(5, 300)))
                for paper in group)
            sections.append(Section("Trending" if trending and n == 0 else topic, items,
                                    trending=trending and n == 0))
        edition = "2026-W48" if sub.frequency == "weekly" else "2026-11-23"
        digests.append(Digest(sub, edition, tuple(sections), NOW))
    return digests


def _per_call(fn: Callable[[], int], repeat: int) -> tuple[float, list[float]]:
    """Median ms per call over ``repeat`` runs; ``fn`` runs once over all inputs, returns calls."""
    runs = []
    for _ in range(repeat):
        start = time.thread_time()
        calls = fn()
        runs.append(1000 * (time.thread_time() - start) / calls)
    return statistics.median(runs), runs


def bench_render(digests: list[Digest], links: list[Any], repeat: int, templates: Path,
                 tracking: bool) -> tuple[float, list[float], list[RenderedDigest]]:
    from newsletter.compose.render import Renderer
    from newsletter.compose.tokens import click_url
    out: list[RenderedDigest] = []
    renderers: list[Renderer] = []
    tracked: list[Callable[[Paper], str] | None] = [
        (lambda paper, d=d: click_url("bench-secret", "https://papers.bench.example.org",
                                      d.subscriber, paper.id)) if tracking else None
        for d in digests]

    def run() -> int:
        renderer = renderers.pop()
        out[:] = [renderer.render(d, lk, t) for d, lk, t in zip(digests, links, tracked)]
        return len(digests)

    runs = []
    for _ in range(repeat):
        # premailer runs in the constructor, outside the timing
        renderers.append(Renderer(templates, base_url="https://papers.bench.example.org",
                                  site_name="Trending Papers"))
        runs.append(_per_call(run, 1)[0])
    return statistics.median(runs), runs, out


def bench_message(digests: list[Digest], rendered: list[RenderedDigest], links: list[Any],
                  repeat: int, dkim: bool = False) -> tuple[float, list[float], list[Outgoing]]:
    from newsletter.compose.message import Letterhead, Returns
    returns = Returns()
    if dkim:  # a fresh 2048-bit key, as an operator would make with openssl genrsa 2048
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        from newsletter.compose.signing import DkimSigner
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        returns = Returns(signer=DkimSigner(pem, selector="bench", domain="bench.example.org",
                                            now=NOW))
    out: list[Outgoing] = []
    letterheads: list[Letterhead] = []

    def run() -> int:
        letterhead = letterheads.pop()
        out[:] = [letterhead.build(d, r, lk) for d, r, lk in zip(digests, rendered, links)]
        return len(digests)

    runs = []
    for _ in range(repeat):  # a fresh Letterhead each time, so its line cache starts cold
        letterheads.append(Letterhead(from_address="papers@bench.example.org",
                                      from_name="Trending Papers",
                                      list_id="papers.bench.example.org", now=NOW,
                                      returns=returns))
        runs.append(_per_call(run, 1)[0])
    return statistics.median(runs), runs, out


def bench_send(messages: list[Outgoing], repeat: int,
               connections: int) -> tuple[float, list[float], float, list[float], int]:
    """(median coroutine ms, runs, median process ms, runs, bytes received by the sink)."""
    from newsletter.delivery.transport import SmtpTransport
    sink = Sink()
    coroutine_runs, process_runs = [], []
    received = 0
    try:
        for _ in range(repeat):
            stages = Stages()
            transport = SmtpTransport("127.0.0.1", sink.port, "none", connections=connections,
                                      timeout=60)
            send = stages.wrap_async("send", transport.send)
            sink.ask("reset")

            async def main() -> float:
                async with transport:
                    await transport.check()  # connect outside the timing, as a long run does
                    while len(transport._idle) < connections:
                        transport._idle.append(await transport._connect("warm-up"))
                    limit = asyncio.Semaphore(connections * 4)

                    async def one(message: Outgoing) -> None:
                        async with limit:
                            await send(message)
                    start = time.process_time()
                    await asyncio.gather(*(one(m) for m in messages))
                    return time.process_time() - start

            cpu = asyncio.run(main())
            stats = sink.ask("stats")
            assert stats["messages"] == len(messages), stats
            received = stats["bytes"]
            calls, _wall, spent = stages.data["send"]
            coroutine_runs.append(1000 * spent / calls)
            process_runs.append(1000 * cpu / len(messages))
    finally:
        sink.close()
    return (statistics.median(coroutine_runs), coroutine_runs,
            statistics.median(process_runs), process_runs, received)


def dump(path: Path, rendered: list[RenderedDigest], messages: list[Outgoing]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for r, m in zip(rendered, messages):
            data = m.data.decode("ascii")
            data = re.sub(r"(?m)^Message-ID: .*$", "Message-ID: <BLANK>", data)
            for boundary in set(re.findall(r'boundary="([^"]+)"', data)):
                data = data.replace(boundary, "BOUNDARY")
            out.write(f"== subject {r.subject}\n== preheader {r.preheader}\n== text\n{r.text}"
                      f"== html\n{r.html}== message\n{data}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--digests", type=int, default=2000)
    parser.add_argument("--pool", type=int, default=600, help="distinct papers to draw from")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--skip-send", action="store_true")
    parser.add_argument("--tracking", action="store_true",
                        help="render with click-tracking links (NEWSLETTER_CLICK_TRACKING)")
    parser.add_argument("--dump", type=Path, help="write every rendering and message here")
    parser.add_argument("--dkim", action="store_true",
                        help="also measure Letterhead.build with DKIM signing (2048-bit RSA)")
    args = parser.parse_args()

    import newsletter
    from newsletter.compose.tokens import links_for
    package = Path(newsletter.__file__).resolve().parent
    digests = make_digests(args.digests, args.pool, args.seed)
    links = [links_for(d.subscriber, secret="bench-secret",
                       base_url="https://papers.bench.example.org",
                       mailto="unsubscribe@bench.example.org") for d in digests]
    print(f"package {package}; {len(digests):,} digests, "
          f"{statistics.mean(len(d.items) for d in digests):.1f} papers each from a pool of "
          f"{args.pool}; load average {os.getloadavg()[0]:.1f}")

    render_ms, render_runs, rendered = bench_render(digests, links, args.repeat,
                                                    package.parent / "templates", args.tracking)
    message_ms, message_runs, messages = bench_message(digests, rendered, links, args.repeat)
    size = statistics.mean(len(m.data) for m in messages)
    html = statistics.mean(len(r.html) for r in rendered) / 1024
    text = statistics.mean(len(r.text) for r in rendered) / 1024
    print(f"messages: {size / 1024:.1f} KB average (html {html:.1f} KB, text {text:.1f} KB)")
    print(f"{'stage':44} {'ms/call':>8}   runs")
    print(f"{'render (Renderer.render, HTML + text)':44} {render_ms:8.3f}   "
          + " ".join(f"{r:.3f}" for r in render_runs))
    print(f"{'message (Letterhead.build)':44} {message_ms:8.3f}   "
          + " ".join(f"{r:.3f}" for r in message_runs))
    if args.dkim:
        signed_ms, signed_runs, _ = bench_message(digests, rendered, links, args.repeat, True)
        print(f"{'message + DKIM (rsa-sha256, 2048 bits)':44} {signed_ms:8.3f}   "
              + " ".join(f"{r:.3f}" for r in signed_runs))
    if not args.skip_send:
        co_ms, co_runs, proc_ms, proc_runs, received = bench_send(messages, args.repeat,
                                                                  args.connections)
        print(f"{'send (CPU inside SmtpTransport.send)':44} {co_ms:8.3f}   "
              + " ".join(f"{r:.3f}" for r in co_runs))
        print(f"{'send (client process CPU per message)':44} {proc_ms:8.3f}   "
              + " ".join(f"{r:.3f}" for r in proc_runs))
        print(f"sink received {received / len(messages) / 1024:.1f} KB per message")
    if args.dump:
        dump(args.dump, rendered, messages)
        print(f"wrote {args.dump}")


if __name__ == "__main__":
    main()
