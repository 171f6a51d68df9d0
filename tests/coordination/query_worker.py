"""One OS process of the ``/search/query`` saturation test (``test_query_saturation.py``).

``python tests/coordination/query_worker.py N CONCURRENCY``: with ``DEEPSEARCH_SANDBOX`` (a connection
file) and ``DEEPSEARCH_DATABASE_URL`` in the environment, runs N one-page Sixtyfour filter searches,
CONCURRENCY at a time, through the library, and prints one JSON line: ``{"statuses": [...]}``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aggregator import Aggregator, load_settings


async def main(n: int, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    async with Aggregator(load_settings()) as agg:

        async def one() -> str:
            async with gate:
                report = await agg.filter_search(mode="company", simple_filters={"hq_country_iso2": {"$eq": "US"}},
                                                 max_results=5, providers=["sixtyfour"])
                return report.outcome("sixtyfour").status

        statuses = await asyncio.gather(*(one() for _ in range(n)))
    sys.stdout.write(json.dumps({"statuses": statuses}) + "\n")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
