"""How fast hits can be recorded: the SQLite journal (batched) vs an in-memory list.

Run: ``.venv/bin/python benchmarks/journal_write.py [--hits 20000] [--page 100]``. Hits are
built up front; each "page" is recorded as ``record_hits`` then ``record_checkpoint`` (the scheduler's
order). The journal figure includes serialization and the final flush/close; the file lives in a
temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aggregator.journal import SqliteJournal
from aggregator.models import Hit, Person, SearchRequest

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def make_hits(n: int) -> list[Hit]:
    return [Hit(provider="bench", provider_record_id=f"r{i}", job_id="job", rank=i + 1, score=0.5, retrieved_at=NOW,
                entity=Person(full_name=f"Person {i}", title="Engineer", company_name="Acme",
                              linkedin_url=f"https://www.linkedin.com/in/p{i}"),
                source_urls=(f"https://example.com/{i}",), raw={"id": i, "name": f"Person {i}"})
            for i in range(n)]


async def memory(hits: list[Hit], page: int, *, serialize: bool = False) -> float:
    store: list[Hit | str] = []
    checkpoint: dict[str, int] = {}
    start = time.perf_counter()
    for i in range(0, len(hits), page):
        if serialize:
            store.extend(h.model_dump_json() for h in hits[i:i + page])
        else:
            store.extend(hits[i:i + page])
        checkpoint = {"offset": i + page}
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - start
    assert len(store) == len(hits) and checkpoint
    return elapsed


async def journal(hits: list[Hit], page: int, path: Path) -> tuple[float, float]:
    request = SearchRequest(query="benchmark")
    async with SqliteJournal(path) as opened:
        await opened.record_run("run", request, NOW)
        await opened.record_submit_intent("run", "bench", "key", request)
        start = time.perf_counter()
        for i in range(0, len(hits), page):
            await opened.record_hits("run", "bench", hits[i:i + page])
            await opened.record_checkpoint("run", "bench", {"offset": i + page})
            await asyncio.sleep(0)
        await opened.flush()
        elapsed = time.perf_counter() - start
        read_start = time.perf_counter()
        back = await opened.hits("run", "bench")
        read = time.perf_counter() - read_start
    assert back == hits
    return elapsed, read


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=100)
    args = parser.parse_args()
    hits = make_hits(args.hits)
    with tempfile.TemporaryDirectory(prefix="journal_bench_") as folder:
        mem = await memory(hits, args.page)
        mem_json = await memory(hits, args.page, serialize=True)
        write, read = await journal(hits, args.page, Path(folder) / "journal.sqlite")
        size = folder_size(Path(folder))
    print(f"{args.hits} hits, pages of {args.page}")
    print(f"{'store':<28}{'seconds':>10}{'hits/s':>14}")
    rows = (("in-memory list", mem), ("in-memory list of JSON", mem_json), ("journal write (batched)", write),
            ("journal read back", read))
    for name, seconds in rows:
        print(f"{name:<28}{seconds:>10.3f}{args.hits / seconds:>14,.0f}")
    print(f"journal file + WAL: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    asyncio.run(main())
