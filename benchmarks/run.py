"""Run the pykernels benchmarks: ``python benchmarks/run.py [--suite quick] [--ops mm,add] ...``.

The same as ``python -m pykernels bench --out <this folder>/results``: the results land in the
``results`` folder beside this script wherever it is run from (a later ``--out`` takes precedence).
Needs pykernels installed (built), not just checked out.
"""

import sys
from pathlib import Path

from pykernels.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--out", str(Path(__file__).resolve().parent / "results"), *sys.argv[1:]]))
