"""bench/roster_scale.py on small meetings, so it keeps running as ingest
changes (the bench itself is never collected). It runs in its own process on
its own temporary SQLite database, as on the command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_prints_both_sizes_the_ratio_and_the_pushed_frames() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    done = subprocess.run(
        [
            *(sys.executable, "bench/roster_scale.py", "--rounds", "2"),
            *("--small", "3", "--large", "40"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    rows = {
        int(m.group(1)): [int(m.group(2)), int(m.group(3))]
        for m in re.finditer(r"^\s+(\d+)\s.*\s(\d+)\s+(\d+)$", done.stdout, re.M)
    }
    assert set(rows) == {3, 40}, done.stdout
    # One mute changed: one participant in the call's delta, the board's row.
    for call_delta, board_delta in rows.values():
        assert 0 < call_delta < 1024
        assert 0 < board_delta < 1024
    assert re.search(r"ratio 40/3 \(server time p50\): [\d.]+x", done.stdout)
    # Every one-change round of the larger meeting pushed its two frames.
    pushed = re.search(
        r"per round: (\d+)-(\d+) frames, the largest (\d+) B, .* at most (\d+) B; "
        r"(\d+) rounds pushed nothing; the pushed delta < 1 KB: (met|NOT met)",
        done.stdout,
    )
    assert pushed is not None, done.stdout
    fewest, most, largest, together, silent, verdict = pushed.groups()
    assert (int(fewest), int(most), int(silent)) == (2, 2, 0)
    assert int(largest) == max(rows[40])
    assert int(largest) < int(together) <= sum(rows[40])
    assert verdict == "met"
