"""Run the pykernels benchmarks: ``python benchmarks/run.py [--suite quick] [--ops mm,add] ...``.

The same as ``python -m pykernels bench``, except that results land in the ``results`` folder
beside this script wherever it is run from. Needs pykernels installed (built), not just checked out.
"""
import sys
from pathlib import Path

from pykernels.bench import main

if __name__ == "__main__":
    sys.exit(main(default_out=Path(__file__).resolve().parent / "results"))
