"""The tasks oracle at bench scale: ``python -m bench oracle`` (or ``python -m bench.oracle``).

Runs the property-based oracle of ``tests/oracle`` (exact answers of ``Query.tasks`` against
generated vendor datasets, with nulls, ties, unknown statuses and one-record pages) with the
``bench`` hypothesis profile: thousands of examples instead of the few hundred of the default
test run. Prints the outcome, the examples run and the wall time; a failure prints the
minimal example hypothesis found.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSING = re.compile(r"(\d+) passing")  # hypothesis's statistics, one line per test


def run(quick: bool = False) -> list[str]:
    """The figures as lines; ``quick`` runs the default test run's few hundred examples."""
    env = {**os.environ, "ORACLE_PROFILE": "oracle" if quick else "bench"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/oracle",
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    examples = sum(int(count) for count in PASSING.findall(done.stdout))
    verdict = "PASS" if done.returncode == 0 else "FAIL"
    lines = [
        f"oracle: {verdict}, {examples} passing examples (profile {env['ORACLE_PROFILE']}), "
        f"{seconds:.0f} s"
    ]
    if done.returncode != 0:
        lines.append(done.stdout[-20_000:])
    return lines


if __name__ == "__main__":
    for line in run(quick="--quick" in sys.argv):
        print(line, flush=True)
