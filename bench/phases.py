"""The phases of a warm ``councilbot ask``, timed in one fresh process: ``python -m bench.phases CONFIG``.

Imports nothing of the project (nor of the benchmarks) before it starts timing, so the import phase is real.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def phases(config: Path) -> dict:
    """Seconds per phase: imports, configuration, knowledge.db, matcher, engine, first answer."""
    clock = time.perf_counter
    t0 = clock()
    import bot.cli  # noqa: F401  (everything the command imports)
    from bot import config as config_module
    from bot.engine import Engine
    from bot.wiring import make_matcher, open_knowledge

    t1 = clock()
    loaded = config_module.load(str(config))
    t2 = clock()
    kb = open_knowledge(loaded)
    t3 = clock()
    matcher = make_matcher(kb, loaded)
    t4 = clock()
    engine = Engine(kb, matcher, loaded, None)
    t5 = clock()
    engine.preview("hello")
    t6 = clock()
    return {
        "import councilbot's modules": t1 - t0,
        "read the configuration": t2 - t1,
        "open knowledge.db": t3 - t2,
        "make the matcher (make_matcher: cached or built index)": t4 - t3,
        "make the engine": t5 - t4,
        "answer 'hello'": t6 - t5,
    }


if __name__ == "__main__":
    print(json.dumps(phases(Path(sys.argv[1]))))
