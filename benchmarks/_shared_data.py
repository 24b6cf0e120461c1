"""The real TREC DL data beside the checkout (``../shared/data``), for the benchmarks.

``use_shared_data()`` puts it on ``REARANK_KIT_DATA`` when it is there and nothing else is set, so
that ``dl19`` resolves, as ``tests/conftest.py`` does for the tests.
"""

import os
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def use_shared_data() -> None:
    if not os.environ.get("REARANK_KIT_DATA") and SHARED_DATA.is_dir():
        os.environ["REARANK_KIT_DATA"] = str(SHARED_DATA)
