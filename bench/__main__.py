"""``python -m bench``: every benchmark, then ``bench/REPORT.md`` (see ``bench/README.md``)."""

import sys

from bench.run import main

sys.exit(main())
