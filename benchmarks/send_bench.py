"""End-to-end send benchmark: synthetic catalog and subscribers, the real ``send`` path into a
lean loopback SMTP sink, per-stage timings, peak RSS, and a naive baseline in the same run.

    python benchmarks/send_bench.py --subscribers 100000 --papers 50000 --new-today 300

Steps (each measured process is a fresh subprocess, so its peak RSS is its own):

1. ``synth.build_database``: a fresh SQLite database in a temp dir, filled with the project's
   own ``save_papers`` / ``sync_subscribers`` (see synth.py for what the data is).
2. ``sink.py`` in another process: counts messages and bytes, costs ~0.3 ms per message.
3. The naive baseline on a sample (``--naive-sample``): the same selection, then premailer on
   every rendered email of the non-inlined template, html2text for the text part,
   ``EmailMessage`` (default policy) + ``as_bytes()``, and smtplib with a new connection per
   email, sequentially. No ledger writes (it is the cost of the email work alone).
4. The real send path: ``asyncio.run(schedule.dispatch(engine, settings, now, owner=...,
   manual=True))`` with SMTP pointed at the sink (security none). The stage functions are wrapped
   from here, without editing the package, to add up the time spent in each: select
   (``build_digest``; the per-topic BM25F rankings are memoized inside it, shown as a sub-line),
   links, render, message, ledger writes, and send (``SmtpTransport.send``: the time spent
   running inside the coroutine, i.e. the client's own CPU, not the time it waits for replies).
   "other" is wall time not in any stage: the event loop, aiosmtplib's reply parsing in protocol
   callbacks, the dispatcher itself, and waiting on the sink.

Needs html2text in the venv for the baseline (``pip install html2text``; not a project
dependency). ``--profile cprofile|pyinstrument`` profiles the real run (slower; use it for the
hotspots, not the figures). Run it against another copy of the package with PYTHONPATH.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
RESULT = "RESULT "


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def _rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) in MB, from /proc (ru_maxrss has only the peak)."""
    now = peak = 0.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return now, peak


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- stage timers --------------------------------------------------------------------------------

class Stages:
    """name -> [calls, wall seconds, CPU seconds]; nested stages are counted in both."""

    def __init__(self) -> None:
        self.data: dict[str, list[float]] = {}
        self.marks: dict[str, tuple[float, float]] = {}

    def add(self, name: str, wall: float, cpu: float, calls: int = 1) -> None:
        entry = self.data.setdefault(name, [0, 0.0, 0.0])
        entry[0] += calls
        entry[1] += wall
        entry[2] += cpu

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        perf, cpu = time.perf_counter, time.thread_time

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            w, c = perf(), cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, perf() - w, cpu() - c)
        return timed

    def wrap_async(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Time only what runs inside the coroutine (each step between two awaits), not the
        time it sits suspended: in one thread that is the coroutine's own CPU cost."""
        stages = self

        class Timed:
            def __init__(self, coro: Any) -> None:
                self.coro = coro

            def __await__(self) -> Any:
                coro, perf, cpu = self.coro, time.perf_counter, time.thread_time
                wall = spent = 0.0
                start = perf()
                send_value: Any = None
                throw: BaseException | None = None
                try:
                    while True:
                        w, c = perf(), cpu()
                        try:
                            if throw is not None:
                                step = coro.throw(throw)
                            else:
                                step = coro.send(send_value)
                        except StopIteration as stop:
                            return stop.value
                        finally:
                            wall += perf() - w
                            spent += cpu() - c
                        try:
                            send_value, throw = (yield step), None
                        except BaseException as exc:  # cancellation goes into the coroutine
                            send_value, throw = None, exc
                finally:
                    stages.add(name, wall, spent)
                    stages.add(name + " (latency)", perf() - start, 0.0)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            return Timed(fn(*args, **kwargs))
        return timed

    def mark(self, name: str) -> None:
        self.marks[name] = _rss_mb()


def instrument(stages: Stages) -> None:
    """Wrap the stage functions where the dispatcher looks them up (no package edits)."""
    from newsletter.compose import render
    from newsletter.delivery import transport
    from newsletter.dispatch import deliver, ledger, schedule, worker
    from newsletter.relevance import rank

    deliver.build_digest = stages.wrap("select", deliver.build_digest)
    if hasattr(deliver.Pipeline, "readers"):  # issue 14: a batch's signals and recalled papers
        deliver.Pipeline.readers = stages.wrap("setup: reader signals", deliver.Pipeline.readers)
    elif hasattr(deliver.Pipeline, "recall"):  # issue 14 before the review
        worker.signals_for = stages.wrap("setup: reader signals", worker.signals_for)
        deliver.Pipeline.recall = stages.wrap("setup: reader signals", deliver.Pipeline.recall)
    if hasattr(deliver.Pipeline, "rank_topics"):  # rankings shared through the store
        deliver.Pipeline.rank_topics = stages.wrap("topic rankings (shared)",
                                                   deliver.Pipeline.rank_topics)
    deliver.links_for = stages.wrap("links", deliver.links_for)
    render.Renderer.render = stages.wrap("render", render.Renderer.render)
    from newsletter.compose import message
    if hasattr(message, "Letterhead"):  # the run builds its Letterhead once, then build() per email
        message.Letterhead.build = stages.wrap("message", message.Letterhead.build)
    else:
        deliver.build_message = stages.wrap("message", deliver.build_message)
    transport.SmtpTransport.send = stages.wrap_async("send", transport.SmtpTransport.send)
    if hasattr(rank.Ranker, "_score_topic"):  # older snapshots
        rank.Ranker._score_topic = stages.wrap(RANKED,
                                               rank.Ranker._score_topic)
    else:  # the topic scorer ranks each understood topic once a run
        from newsletter.relevance import topic
        topic.TopicScorer.score = stages.wrap(RANKED, topic.TopicScorer.score)
    from newsletter.dispatch import claims, journal
    if hasattr(journal, "Journal"):  # group commits, in a thread beside the event loop
        journal.Journal._write = stages.wrap("ledger writes (group commits)",
                                             journal.Journal._write)
        claims.claim = stages.wrap("claims (batches)", claims.claim)
        schedule.plan = stages.wrap("setup: plan (queue the run)", schedule.plan)
        if hasattr(schedule, "plan_when_reachable"):  # dispatch plans once the relay answered
            schedule.plan_when_reachable = stages.wrap_async("setup: plan (queue the run)",
                                                             schedule.plan_when_reachable)
    for name in ("begin", "mark_sent", "mark_skipped", "mark_retrying", "mark_failed",
                 "mark_uncertain"):  # older snapshots: one transaction per write
        if hasattr(ledger, name):
            setattr(ledger, name, stages.wrap("ledger writes", getattr(ledger, name)))
    ledger.sent_papers_by_subscriber = stages.wrap("setup: sent papers",
                                                   ledger.sent_papers_by_subscriber)
    ledger.states_for = stages.wrap("setup: ledger states", ledger.states_for)
    worker.load_subscribers = stages.wrap("setup: load subscribers", worker.load_subscribers)
    schedule.load_subscribers = stages.wrap("setup: load subscribers", schedule.load_subscribers)
    deliver.load_papers = stages.wrap("setup: load papers", deliver.load_papers)
    rank.Ranker.__init__ = stages.wrap("setup: ranker index", rank.Ranker.__init__)
    render.Renderer.__init__ = stages.wrap("setup: templates (premailer once)",
                                           render.Renderer.__init__)
    build = deliver.Pipeline.build.__func__  # type: ignore[attr-defined]

    def pipeline_build(cls: Any, *args: Any, **kwargs: Any) -> Any:
        result = build(cls, *args, **kwargs)
        stages.mark("after Pipeline.build")
        return result
    deliver.Pipeline.build = classmethod(pipeline_build)  # type: ignore[assignment]
    assert schedule.Pipeline is deliver.Pipeline


RANKED = "  topics ranked here (in select/shared)"  # a sub-line: part of the stage that asked
TOP_STAGES = ("setup: plan (queue the run)", "setup: load subscribers", "setup: load papers",
              "setup: ranker index", "setup: templates (premailer once)", "setup: ledger states",
              "setup: sent papers", "setup: reader signals", "claims (batches)",
              "topic rankings (shared)", "select",
              "links", "render", "message",
              "ledger writes", "ledger writes (group commits)", "send")


# -- the worker processes ------------------------------------------------------------------------

def make_settings(url: str, port: int, connections: int | None, workdir: Path) -> Any:
    import newsletter
    from newsletter.settings import Settings

    root = Path(newsletter.__file__).resolve().parent.parent
    extra = {"smtp_connections": connections} if connections else {}
    return Settings(
        database_url=url, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
        smtp_timeout=60.0, from_address="papers@bench.example.org", from_name="Trending Papers",
        base_url="https://papers.bench.example.org", secret_key="benchmark-secret-key",
        templates_dir=root / "templates", outbox_dir=workdir / "outbox",
        subscribers_dir=workdir / "no-subscribers", sources=[str(root / "seeds")],
        # The lexical path: loading the embedding model would dominate RSS; its own costs are
        # measured by benchmarks/relevance/scale.py.
        semantic="off", **extra)


def run_dispatch(args: argparse.Namespace) -> dict[str, Any]:
    """The real send path, instrumented; returns the figures."""
    from synth import connect  # the snapshot's own, whichever module holds it

    import newsletter
    from newsletter.dispatch import ledger, schedule

    base_rss = _rss_mb()[0]
    stages = Stages()
    instrument(stages)
    workdir = Path(args.workdir)
    settings = make_settings(args.db, args.port, args.connections, workdir)
    engine = connect(settings.database_url)
    now = datetime.fromisoformat(args.now)
    done = [0]
    started = time.perf_counter()

    def progress(total: int) -> Callable[[], None]:
        step = max(total // 10, 1)

        def tick() -> None:
            done[0] += 1
            if done[0] % step == 0:
                elapsed = time.perf_counter() - started
                log(f"    {done[0]:,}/{total:,} digests handled, {elapsed:.0f}s, "
                    f"RSS {_rss_mb()[0]:.0f} MB")
        return tick

    async def main() -> Any:
        helpers = {"helpers": args.workers - 1} if args.workers > 1 else {}
        return await schedule.dispatch(engine, settings, now, owner=ledger.lock_owner(),
                                       manual=True, progress=progress, **helpers)

    profiler = None
    if args.profile == "cprofile":
        import cProfile
        profiler = cProfile.Profile()
    elif args.profile == "pyinstrument":
        from pyinstrument import Profiler
        profiler = Profiler(async_mode="enabled", interval=0.002)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable() if args.profile == "cprofile" else profiler.start()
    report = asyncio.run(main())
    if profiler is not None:
        profiler.disable() if args.profile == "cprofile" else profiler.stop()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if profiler is not None:
        _dump_profile(profiler, args.profile, workdir)
    return {
        "package": str(Path(newsletter.__file__).resolve().parent),
        "wall_s": wall, "cpu_s": cpu,
        "sent": _count(report.sent) + getattr(report, "by_helpers", {}).get("sent", 0),
        "sent_main": _count(report.sent), "workers": args.workers,
        "helpers_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "helpers_cpu_s": (lambda r: r.ru_utime + r.ru_stime)(
            resource.getrusage(resource.RUSAGE_CHILDREN)),
        "empty": _count(report.empty),
        "failed": len(report.failed), "uncertain": len(report.uncertain),
        "retrying": len(report.retrying), "already": report.already,
        "failures_sample": report.failed[:3],
        "stages": stages.data, "marks": stages.marks,
        "rss_base_mb": base_rss, "maxrss_mb": _maxrss_mb(), "vmhwm_mb": _rss_mb()[1],
        "loadavg": os.getloadavg(),
        "connections": settings.smtp_connections,
    }


def _count(value: Any) -> int:
    """Reports count (older snapshots list the addresses)."""
    return value if isinstance(value, int) else len(value)


def _dump_profile(profiler: Any, kind: str, workdir: Path) -> None:
    if kind == "cprofile":
        import io
        import pstats
        path = workdir / "dispatch.prof"
        profiler.dump_stats(path)
        for key in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(35)
            text = out.getvalue()
            (workdir / f"profile-{key}.txt").write_text(text)
            log(text)
        log(f"cProfile data: {path} (snakeviz or pstats)")
    else:
        text = profiler.output_text(unicode=False, color=False, show_all=False)
        (workdir / "pyinstrument.txt").write_text(text)
        profiler.write_html(str(workdir / "pyinstrument.html"))
        log(text)
        log(f"pyinstrument: {workdir / 'pyinstrument.html'}")


def run_naive(args: argparse.Namespace) -> dict[str, Any]:
    """premailer per email + html2text + EmailMessage + smtplib, one connection per email."""
    import smtplib
    from email.message import EmailMessage
    from email.utils import format_datetime, formataddr, make_msgid

    import html2text
    from premailer import Premailer
    from synth import connect  # the snapshot's own, whichever module holds it

    from newsletter.compose.inline import PREMAILER_OPTIONS
    from newsletter.compose.render import HTML_TEMPLATE
    from newsletter.dispatch import ledger
    from newsletter.dispatch.deliver import Pipeline
    from newsletter.relevance.select import build_digest, edition_for
    from newsletter.store.subscribers import load_subscribers

    workdir = Path(args.workdir)
    settings = make_settings(args.db, args.port, None, workdir)
    engine = connect(settings.database_url)
    now = datetime.fromisoformat(args.now)
    stages = Stages()
    t = time.perf_counter()
    subs = load_subscribers(engine)
    sample = random.Random(11).sample(subs, min(args.sample, len(subs)))
    pipeline = Pipeline.build(engine, settings, now)
    for topic in {t for s in sample for t in (*s.topics, *s.exclude)}:
        pipeline.ranker.rank(topic)  # the per-topic rankings, shared by both pipelines anyway
    sent_before = ledger.sent_papers_by_subscriber(engine, [s.id for s in sample])
    template = pipeline.renderer.html_env.get_template(HTML_TEMPLATE)  # not inlined
    setup = time.perf_counter() - t
    sent = empty = 0
    wall0 = time.perf_counter()
    for sub in sample:
        w, c = time.perf_counter(), time.thread_time()
        digest = build_digest(sub, pipeline.ranker, sent_before.get(sub.id, set()),
                              edition_for(sub, now), now)
        stages.add("select", time.perf_counter() - w, time.thread_time() - c)
        if digest is None:
            empty += 1
            continue
        w, c = time.perf_counter(), time.thread_time()
        links = pipeline.links(sub)
        context = pipeline.renderer.context(digest, links)
        html = template.render(context)
        stages.add("render (Jinja)", time.perf_counter() - w, time.thread_time() - c)
        w, c = time.perf_counter(), time.thread_time()
        html = Premailer(html, **PREMAILER_OPTIONS).transform()
        stages.add("premailer per email", time.perf_counter() - w, time.thread_time() - c)
        w, c = time.perf_counter(), time.thread_time()
        text = html2text.html2text(html)
        stages.add("html2text", time.perf_counter() - w, time.thread_time() - c)
        w, c = time.perf_counter(), time.thread_time()
        msg = EmailMessage()
        msg["From"] = formataddr((settings.from_name, settings.from_address))
        msg["To"] = formataddr((sub.name, sub.email))
        msg["Subject"] = context["subject"]
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = make_msgid(domain=settings.domain)
        msg["List-Id"] = f"{settings.from_name} <{settings.list_id_value}>"
        msg["List-Unsubscribe"] = f"<{links.unsubscribe_url}>, <{links.unsubscribe_mailto}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        data = msg.as_bytes()
        stages.add("message (EmailMessage)", time.perf_counter() - w, time.thread_time() - c)
        w, c = time.perf_counter(), time.thread_time()
        with smtplib.SMTP("127.0.0.1", args.port, timeout=60) as smtp:
            smtp.sendmail(settings.from_address, [sub.email], data)
        stages.add("send (smtplib, new connection)", time.perf_counter() - w,
                   time.thread_time() - c)
        sent += 1
    wall = time.perf_counter() - wall0
    return {"sample": len(sample), "sent": sent, "empty": empty, "wall_s": wall,
            "setup_s": setup, "stages": stages.data, "maxrss_mb": _maxrss_mb(),
            "loadavg": os.getloadavg()}


# -- the orchestrator --------------------------------------------------------------------------

class Sink:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "sink.py"), "--control"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = json.loads(self._line())["port"]

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sink stopped")
        return line

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self._line())

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _child(mode: str, args: argparse.Namespace, db: str, port: int, workdir: Path,
           now: datetime, extra: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--{mode}", "--db", db,
           "--port", str(port), "--workdir", str(workdir), "--now", now.isoformat(), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode or not lines:
        raise SystemExit(f"{mode} run failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    return json.loads(lines[-1][len(RESULT):])


def _fmt_rate(n: float, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s" if seconds > 0 else "-"


def print_naive(naive: dict[str, Any]) -> None:
    n = naive["sent"]
    print(f"\nNaive baseline ({naive['sample']:,} sampled subscribers, {n:,} emails, "
          f"{naive['empty']} with nothing new; setup {naive['setup_s']:.1f}s not counted):")
    print(f"  {'stage':34} {'ms/email':>9} {'rate alone':>11}")
    for name, (calls, wall, _cpu) in naive["stages"].items():
        print(f"  {name:34} {1000 * wall / max(n, 1):9.2f} {_fmt_rate(calls, wall):>11}")
    cpu = sum(c for _, _, c in naive["stages"].values())
    print(f"  total {naive['wall_s']:.1f}s = {n / naive['wall_s']:.1f} msgs/s (stage CPU "
          f"{cpu:.1f}s), peak RSS {naive['maxrss_mb']:.0f} MB, load average "
          f"{naive['loadavg'][0]:.1f}")
    if "sink" in naive:
        sink = naive["sink"]
        print(f"  sink: {sink['messages']:,} messages, "
              f"{sink['bytes'] / max(sink['messages'], 1) / 1024:.1f} KB average, "
              f"{sink['connections']:,} connections")


def print_ours(run: dict[str, Any], sink: dict[str, Any], subscribers: int) -> None:
    wall, sent = run["wall_s"], run["sent"]
    stages = run["stages"]
    workers = run.get("workers", 1)
    print(f"\nReal send path (schedule.dispatch, {workers} worker process(es) x "
          f"{run['connections']} SMTP connections; package {run['package']}):")
    if workers > 1:
        print(f"  the stage table is the main process only ({run['sent_main']:,} of the "
              f"{run['sent']:,} messages); helper processes: CPU {run['helpers_cpu_s']:.1f}s, "
              f"peak RSS {run['helpers_maxrss_mb']:.0f} MB")
    print(f"  {subscribers:,} subscribers: {sent:,} sent, {run['empty']:,} nothing new, "
          f"{run['failed']} failed, {run['uncertain']} uncertain, {run['retrying']} retrying")
    if run["failures_sample"]:
        print(f"  failures, e.g.: {run['failures_sample']}")
    print(f"  {'stage':36} {'calls':>8} {'wall s':>8} {'CPU s':>8} {'ms/call':>8} "
          f"{'share':>6} {'rate alone':>11}")
    accounted = 0.0
    for name in TOP_STAGES + (RANKED,):
        if name not in stages:
            continue
        calls, w, c = stages[name]
        if not name.startswith("  "):
            accounted += w
        print(f"  {name:36} {int(calls):8,} {w:8.2f} {c:8.2f} {1000 * w / max(calls, 1):8.3f} "
              f"{100 * w / wall:5.1f}% {_fmt_rate(calls, w):>11}")
    other = wall - accounted
    print(f"  {'other (event loop, aiosmtplib callbacks, waits)':36} {'':8} {other:8.2f} "
          f"{'':8} {'':8} {100 * other / wall:5.1f}%")
    if "send (latency)" in stages:
        calls, w, _ = stages["send (latency)"]
        print(f"  send latency (call to reply, incl. waiting): {1000 * w / max(calls, 1):.2f} "
              f"ms/message average")
    print(f"  total wall {wall:.1f}s, main process CPU {run['cpu_s']:.1f}s "
          f"({100 * run['cpu_s'] / wall:.0f}% of one core) -> {sent / wall:,.1f} msgs/s "
          f"(main process CPU-bound rate {run.get('sent_main', sent) / run['cpu_s']:,.1f}/s); "
          f"load average at the end "
          f"{run['loadavg'][0]:.1f}")
    marks = run["marks"].get("after Pipeline.build")
    print(f"  peak RSS {run['maxrss_mb']:.0f} MB (VmHWM {run['vmhwm_mb']:.0f} MB; after imports "
          f"{run['rss_base_mb']:.0f} MB"
          + (f", after Pipeline.build {marks[0]:.0f} MB" if marks else "") + ")")
    msgs = sink["messages"]
    print(f"  sink: {msgs:,} messages, {sink['bytes'] / max(msgs, 1) / 1024:.1f} KB average, "
          f"{sink['connections']} connections, CPU {sink['cpu_s']:.1f}s, "
          f"peak RSS {sink['maxrss_kb'] / 1024:.0f} MB")


def add_feedback(url: str, share: float, seed: int, now: datetime) -> int:
    """Give ``share`` of the subscribers what a reader of a few weeks has told us: 3 papers
    liked and 2 hidden among those they were sent (the ledger history), and 2 papers of their
    own (one a catalog paper by its arXiv id, one known only by its title and abstract)."""
    import random as _random

    from synth import connect  # the snapshot's own, whichever module holds it

    from newsletter.dispatch import ledger
    from newsletter.models import OwnPaper
    from newsletter.store.catalog import load_papers
    from newsletter.store.readers import replace_library, set_feedback
    from newsletter.store.subscribers import load_subscribers

    t = time.perf_counter()
    rng = _random.Random(seed + 14)
    engine = connect(url)
    people = [s.id for s in load_subscribers(engine)]
    chosen = sorted(rng.sample(people, round(len(people) * share)))
    sent = ledger.sent_papers_by_subscriber(engine, chosen)
    papers = load_papers(engine)
    for sub_id in chosen:
        had = sorted(sent.get(sub_id, ()))
        marks = rng.sample(had, min(5, len(had)))
        for n, pid in enumerate(marks):
            set_feedback(engine, sub_id, pid, "more" if n < 3 else "less", now)
        mine, text = rng.sample(papers, 2)
        replace_library(engine, sub_id, [
            OwnPaper(key=f"arxiv:{mine.id}", title=""),
            OwnPaper(key=f"bench{sub_id}", title=text.title, abstract=text.abstract)], "web")
    engine.dispose()
    log(f"  feedback: {len(chosen):,} readers with 3 liked, 2 hidden and 2 own papers each, "
        f"in {time.perf_counter() - t:.1f}s")
    return len(chosen)


def orchestrate(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="send-bench-"))
    db_path = workdir / "bench.db"
    pristine = workdir / "pristine.db"
    url = f"sqlite:///{db_path}"
    schema = None
    if args.postgres:  # a throwaway schema on that server; built once, so one run
        from sqlalchemy import create_engine, text
        schema, args.repeat = f"bench_{os.getpid()}", 1
        with create_engine(args.postgres).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.postgres}?options=-csearch_path%3D{schema}"
    now = datetime.now(UTC).replace(microsecond=0)
    sink = None
    try:
        # The sink and every measured process start from this small process: on Linux a child's
        # ru_maxrss starts at its parent's RSS at fork time, so the big work happens in children.
        sink = Sink()
        log(f"sink listening on 127.0.0.1:{sink.port} (pid {sink.proc.pid})")
        log(f"building the database in {workdir} ...")
        info = _child("build", args, url, 0, workdir, now,
                      ["--papers", str(args.papers), "--new-today", str(args.new_today),
                       "--subscribers", str(args.subscribers),
                       "--history-days", str(args.history_days), "--seed", str(args.seed),
                       "--feedback-share", str(args.feedback_share),
                       "--seeds", str(Path(args.seeds).resolve())])
        if not schema:
            shutil.copy(db_path, pristine)

        naive = None
        if args.naive_sample:
            log(f"naive baseline on {args.naive_sample:,} subscribers ...")
            sink.ask("reset")
            naive = _child("naive", args, url, sink.port, workdir, now,
                           ["--sample", str(args.naive_sample)])
            naive["sink"] = sink.ask("stats")

        runs = []
        extra = ["--connections", str(args.connections)] if args.connections else []
        extra += ["--workers", str(args.workers)]
        for i in range(args.repeat):
            if i:
                shutil.copy(pristine, db_path)
                for suffix in ("-wal", "-shm"):
                    Path(f"{db_path}{suffix}").unlink(missing_ok=True)
            log(f"real send path, run {i + 1}/{args.repeat} ...")
            sink.ask("reset")
            run = _child("dispatch", args, url, sink.port, workdir, now, extra)
            run["sink"] = sink.ask("stats")
            runs.append(run)
            log(f"    {run['sent']:,} sent in {run['wall_s']:.1f}s = "
                f"{run['sent'] / run['wall_s']:,.1f} msgs/s, peak RSS {run['maxrss_mb']:.0f} MB")
        if args.profile != "none":
            log(f"profiled run ({args.profile}) ...")
            shutil.copy(pristine, db_path)
            for suffix in ("-wal", "-shm"):
                Path(f"{db_path}{suffix}").unlink(missing_ok=True)
            _child("dispatch", args, url, sink.port, workdir, now, extra + ["--profile",
                                                                            args.profile])

        if args.feedback_share:
            print(f"\n{info.get('feedback_readers', 0):,} subscribers "
                  f"({args.feedback_share:.0%}) have feedback and own papers")
        print(f"\n== send benchmark: {args.subscribers:,} subscribers, {info['papers']:,} papers "
              f"({args.new_today} new today), {args.history_days} day(s) of ledger history "
              f"({info['sent_papers_rows']:,} sent_papers rows), {os.cpu_count()} CPUs ==")
        print(f"database built in {info['generate_papers_s'] + info['save_papers_s']:.0f}s "
              f"(papers) + {info['sync_subscribers_s']:.0f}s (subscribers) + "
              f"{info['history_s']:.0f}s (history): not part of the figures")
        if naive:
            print_naive(naive)
        median = sorted(runs, key=lambda r: r["sent"] / r["wall_s"])[len(runs) // 2]
        print_ours(median, median["sink"], args.subscribers)
        if len(runs) > 1:
            rates = [r["sent"] / r["wall_s"] for r in runs]
            walls = [r["wall_s"] for r in runs]
            print(f"  {len(runs)} runs: msgs/s {', '.join(f'{r:,.1f}' for r in rates)} "
                  f"(median {statistics.median(rates):,.1f}); wall s "
                  f"{', '.join(f'{w:.1f}' for w in walls)}; peak RSS MB "
                  f"{', '.join(str(round(r['maxrss_mb'])) for r in runs)}; load average "
                  f"{', '.join(str(round(r['loadavg'][0], 1)) for r in runs)}; "
                  f"the table is the median run")
        if naive and naive["sent"]:
            ours_rate = median["sent"] / median["wall_s"]
            naive_rate = naive["sent"] / naive["wall_s"]
            naive_total = naive["setup_s"] + median["sent"] / naive_rate
            print(f"\nRatio: ours {ours_rate:,.1f} msgs/s (end to end, setup included) / naive "
                  f"{naive_rate:,.1f} msgs/s (steady state, setup excluded) = "
                  f"{ours_rate / naive_rate:.1f}x")
            print(f"  naive extrapolated to {median['sent']:,} emails: {naive_total / 60:.1f} min;"
                  f" ours: {median['wall_s'] / 60:.1f} min")
        if args.json:
            Path(args.json).write_text(json.dumps(
                {"args": vars(args), "info": info, "naive": naive, "runs": runs}, indent=1))
    finally:
        if schema:
            from sqlalchemy import create_engine, text
            with create_engine(args.postgres).begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        if sink:
            sink.close()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="End-to-end send benchmark into a loopback SMTP sink.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=50_000)
    parser.add_argument("--new-today", type=int, default=300)
    parser.add_argument("--history-days", type=int, default=1,
                        help="earlier digests per subscriber already in the ledger")
    parser.add_argument("--naive-sample", type=int, default=1000,
                        help="subscribers for the naive baseline (0: skip it)")
    parser.add_argument("--connections", type=int, default=None,
                        help="NEWSLETTER_SMTP_CONNECTIONS (default: the project's default)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes of the real path (send --workers); default: "
                             "one per core")
    parser.add_argument("--repeat", type=int, default=1, help="runs of the real path (median)")
    parser.add_argument("--postgres", metavar="URL",
                        help="run on this PostgreSQL database (a new schema in it) instead of "
                             "a SQLite file, e.g. postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--profile", choices=("none", "cprofile", "pyinstrument"),
                        default="none", help="an extra, profiled run of the real path")
    parser.add_argument("--feedback-share", type=float, default=0.0,
                        help="share of subscribers with feedback and own papers (issue 14)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seeds", default=str(HERE.parent / "seeds"),
                        help="folder of the real seed pages")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    # internal: the measured subprocesses
    parser.add_argument("--dispatch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dispatch:
        print(RESULT + json.dumps(run_dispatch(args)), flush=True)
    elif args.naive:
        print(RESULT + json.dumps(run_naive(args)), flush=True)
    elif args.build:
        sys.path.insert(0, str(HERE))
        import synth
        info = synth.build_database(
            args.db, Path(args.seeds), papers=args.papers, new_today=args.new_today,
            subscribers=args.subscribers, history_days=args.history_days,
            now=datetime.fromisoformat(args.now), seed=args.seed, log=log)
        if args.feedback_share:
            info["feedback_readers"] = add_feedback(args.db, args.feedback_share, args.seed,
                                                    datetime.fromisoformat(args.now))
        print(RESULT + json.dumps(info), flush=True)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
