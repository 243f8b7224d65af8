#!/usr/bin/env python3
"""Times `gatehouse scan` and `gatehouse review` on organization-sized exports, side by side
with Cloudsplaining 0.9.1 `scan` on the same files, in one run: wall time and peak resident
memory of each process (`/usr/bin/time -v`), medians over the runs, and the ratios the
analyzer's targets are stated in; CPU time (user + system) beside wall time, since on a
shared machine wall time measures the other tenants too (growth from 25 to 100 accounts, speed against
Cloudsplaining, peak memory against the export's size on disk).

The exports are made by scripts/gen-org-export.py (N copies of the corpus example, each its
own account) into --dir, once. Every run is bounded: a Cloudsplaining run over
--peer-timeout seconds is stopped and reported as such (`timeout`).

Usage:
  cargo build --release -p gatehouse-cli
  python3 -m venv /tmp/scanners-venv && /tmp/scanners-venv/bin/pip install cloudsplaining==0.9.1
  scripts/bench-org.py [--sizes 1,25,100,400] [--runs 3] [--peer-runs 3,3,1,1]
                       [--peer-timeout 900] [--dir /tmp/orgbench]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def timed(cmd, timeout):
    """(wall seconds, peak RSS in KiB, CPU seconds) of one run, or None when it ran out of
    time."""
    argv = ["timeout", str(timeout), "/usr/bin/time", "-v"] + cmd
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode == 124:
        return None
    # gatehouse scan exits 1 when it has findings; anything else is a failure.
    if p.returncode not in (0, 1):
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", p.stderr).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    cpu = sum(float(re.search(r"%s time \(seconds\): (\S+)" % k, p.stderr).group(1)) for k in ("User", "System"))
    return secs, rss, cpu


def medians(cmd, runs, timeout):
    """Median wall time, peak RSS and CPU time over `runs` runs; None when any run timed out."""
    got = []
    for _ in range(runs):
        r = timed(cmd, timeout)
        if r is None:
            return None
        got.append(r)
    return tuple(statistics.median(r[k] for r in got) for k in range(3))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,25,100,400")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-runs", default="3,3,1,1", help="Cloudsplaining runs per size (0: skip)")
    ap.add_argument("--peer-timeout", type=int, default=900)
    ap.add_argument("--dir", default="/tmp/orgbench")
    ap.add_argument("--gatehouse", default=os.path.join(ROOT, "target", "release", "gatehouse"))
    ap.add_argument("--cloudsplaining", default=os.path.join(
        os.environ.get("SCANNERS_VENV", "/tmp/scanners-venv"), "bin", "cloudsplaining"))
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    peer_runs = [int(s) for s in a.peer_runs.split(",")]
    peer_runs += [peer_runs[-1]] * (len(sizes) - len(peer_runs))
    os.makedirs(a.dir, exist_ok=True)
    out = tempfile.mkdtemp()
    os.makedirs(os.path.join(out, "cs"))
    rows = {}
    for n, pruns in zip(sizes, peer_runs):
        export = os.path.join(a.dir, "org-%d.json" % n)
        if not os.path.exists(export):
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen-org-export.py"),
                            str(n), export], check=True)
        size_kib = os.path.getsize(export) / 1024
        gh = a.gatehouse
        row = {
            "size_kib": size_kib,
            "scan": medians([gh, "scan", export, "--format", "json"], a.runs, a.peer_timeout),
            "review": medians([gh, "review", "--details", export, "--format", "json"],
                              a.runs, a.peer_timeout),
            "cloudsplaining": None if pruns == 0 else medians(
                [a.cloudsplaining, "scan", "--input-file", export, "--output",
                 os.path.join(out, "cs"), "--skip-open-report"], pruns, a.peer_timeout),
            "peer_runs": pruns,
        }
        rows[n] = row
        print(json.dumps({n: row}), flush=True)
    shutil.rmtree(out, ignore_errors=True)

    def cell(m):
        return "—" if m is None else "%.2f s (CPU %.2f s), %.0f MiB" % (m[0], m[2], m[1] / 1024)

    print("\n| accounts | export | `scan` | `review` | Cloudsplaining 0.9.1 `scan` | scan / review vs Cloudsplaining | peak RSS / export (scan, review) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in rows.items():
        cs = r["cloudsplaining"]
        if cs is None:
            cs_cell = "not run" if r["peer_runs"] == 0 else "> %d s (stopped)" % a.peer_timeout
            ratio = "—"
        else:
            cs_cell = cell(cs)
            ratio = "%.0f× / %.0f× wall, %.0f× / %.0f× CPU" % (
                cs[0] / r["scan"][0], cs[0] / r["review"][0], cs[2] / r["scan"][2], cs[2] / r["review"][2])
        mem = "%.1f× / %.1f×" % (r["scan"][1] / r["size_kib"], r["review"][1] / r["size_kib"])
        print("| %d | %.1f MiB | %s | %s | %s | %s | %s |" % (
            n, r["size_kib"] / 1024, cell(r["scan"]), cell(r["review"]), cs_cell, ratio, mem))
    if 25 in rows and 100 in rows:
        for cmd in ("scan", "review", "cloudsplaining"):
            lo, hi = rows[25][cmd], rows[100][cmd]
            if lo and hi:
                print("growth 25→100 accounts, %s: %.1f× wall, %.1f× CPU, %.1f× peak RSS" % (
                    cmd, hi[0] / lo[0], hi[2] / lo[2], hi[1] / lo[1]))


if __name__ == "__main__":
    main()
