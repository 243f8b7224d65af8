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

Cloudsplaining takes minutes to hours at these sizes, so its runs can be bounded by CPU time
as well (--peer-cpu, per size: the process gets SIGXCPU once it has used that much): a run
stopped either way is reported with the CPU time it had used, a lower bound of its cost, and
the ratio against it as a lower bound ("> N×"). The two sides can be measured in separate
invocations into one results file (--only peer / --only gatehouse, --results FILE), each
side's figures with their own date; --table FILE prints the table of a results file.

`--commands` picks what is timed on Gatehouse's side: `scan` and `review` (the default, beside
Cloudsplaining), and the questions asked of one organization's export: `who-can` (who can
invoke a Bedrock model), `what-can` (what the last account's last role can do) and
`generate` (a least-privilege policy for that role from an audit log of the organization:
four records per user and role of the export, `org-N-audit.jsonl`, made once), which no
peer answers.

Usage:
  cargo build --release -p gatehouse-cli
  python3 -m venv /tmp/scanners-venv && /tmp/scanners-venv/bin/pip install cloudsplaining==0.9.1
  scripts/bench-org.py [--sizes 1,25,100,400] [--runs 3] [--peer-runs 3,3,1,1]
                       [--peer-timeout 900] [--peer-cpu 0,1200,1200,900] [--dir /tmp/orgbench]
                       [--only gatehouse|peer] [--results FILE] [--table FILE]
                       [--commands scan,review,who-can,what-can,generate]
"""

import argparse
import json
import os
import re
import resource
import time
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def timed(cmd, timeout, cpu_limit=0):
    """(wall seconds, peak RSS in KiB, CPU seconds, finished) of one run; a run stopped by
    `timeout` (wall) or by its CPU limit has finished=False and the CPU time it had used."""
    argv = ["timeout", str(timeout), "/usr/bin/time", "-v"] + cmd

    def limit():
        if cpu_limit:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, cpu_limit))

    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       preexec_fn=limit)
    stopped = p.returncode == 124 or "Command terminated by signal" in p.stderr
    # gatehouse scan exits 1 when it has findings; anything else is a failure.
    if not stopped and p.returncode not in (0, 1):
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", p.stderr)
    if wall is None:  # killed by timeout before /usr/bin/time could report
        return None
    secs = 0.0
    for part in wall.group(1).split(":"):
        secs = secs * 60 + float(part)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    cpu = sum(float(re.search(r"%s time \(seconds\): (\S+)" % k, p.stderr).group(1)) for k in ("User", "System"))
    return secs, rss, cpu, not stopped


def medians(cmd, runs, timeout, cpu_limit=0):
    """Median wall time, peak RSS and CPU time over `runs` runs, and whether every run
    finished; the first stopped run ends the series (its figures are lower bounds)."""
    got = []
    for _ in range(runs):
        r = timed(cmd, timeout, cpu_limit)
        if r is None:
            return None
        if not r[3]:
            return [r[0], r[1], r[2], False]
        got.append(r)
    return [statistics.median(r[k] for r in got) for k in range(3)] + [True]


MODEL = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2"


def audit_log(export, path):
    """Writes an audit log of the organization (`gatehouse audit export` lines): four
    allowed calls per user and role of the export, in the last 20 days; returns the last
    role's ARN (the principal `what-can` and `generate` ask about)."""
    with open(export) as f:
        details = json.load(f)
    arns = [e["Arn"] for k in ("UserDetailList", "RoleDetailList") for e in details.get(k, [])]
    last_role = details["RoleDetailList"][-1]["Arn"]
    if os.path.exists(path):
        return last_role
    now = time.time()
    calls = [("bedrock:InvokeModel", MODEL), ("iam:GetUser", "*"),
             ("s3:GetObject", "arn:aws:s3:::data-%d/key"), ("sts:GetCallerIdentity", "*")]
    with open(path + ".tmp", "w") as out:
        for i, arn in enumerate(arns):
            for j, (action, resource) in enumerate(calls):
                t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60 * (i % 28800) - j))
                out.write(json.dumps({
                    "time": t, "request_id": "r-%d-%d" % (i, j), "principal": arn,
                    "access_key_id": None, "action": action,
                    "resource": resource.replace("%d", str(i % 7)), "decision": "Allow",
                    "statement": None, "source_ip": "127.0.0.1", "error_code": None}) + "\n")
    os.rename(path + ".tmp", path)
    return last_role


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,25,100,400")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-runs", default="3,3,1,1", help="Cloudsplaining runs per size (0: skip)")
    ap.add_argument("--peer-timeout", type=int, default=900)
    ap.add_argument("--peer-cpu", default="0", help="CPU seconds per Cloudsplaining run, per size (0: no limit)")
    ap.add_argument("--dir", default="/tmp/orgbench")
    ap.add_argument("--only", choices=("gatehouse", "peer"))
    ap.add_argument("--results", help="JSON file the figures are merged into")
    ap.add_argument("--table", help="only print the table of this results file")
    ap.add_argument("--commands", default="scan,review",
                    help="Gatehouse commands timed: scan, review, who-can, what-can, generate")
    ap.add_argument("--gatehouse", default=os.path.join(ROOT, "target", "release", "gatehouse"))
    ap.add_argument("--cloudsplaining", default=os.path.join(
        os.environ.get("SCANNERS_VENV", "/tmp/scanners-venv"), "bin", "cloudsplaining"))
    a = ap.parse_args()
    if a.table:
        with open(a.table) as f:
            print_table({int(k): v for k, v in json.load(f).items()})
        return
    sizes = [int(s) for s in a.sizes.split(",")]

    def per_size(arg):
        v = [int(s) for s in arg.split(",")]
        return v + [v[-1]] * (len(sizes) - len(v))

    peer_runs, peer_cpu = per_size(a.peer_runs), per_size(a.peer_cpu)
    os.makedirs(a.dir, exist_ok=True)
    out = tempfile.mkdtemp()
    os.makedirs(os.path.join(out, "cs"))
    rows = {}
    if a.results and os.path.exists(a.results):
        with open(a.results) as f:
            rows = {int(k): v for k, v in json.load(f).items()}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for n, pruns, pcpu in zip(sizes, peer_runs, peer_cpu):
        export = os.path.join(a.dir, "org-%d.json" % n)
        if not os.path.exists(export):
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen-org-export.py"),
                            str(n), export], check=True)
        row = rows.setdefault(n, {})
        row["size_kib"] = os.path.getsize(export) / 1024
        gh = a.gatehouse
        if a.only != "peer":
            commands = a.commands.split(",")
            asked = {
                "scan": lambda: [gh, "scan", export, "--format", "json"],
                "review": lambda: [gh, "review", "--details", export, "--format", "json"],
                "who-can": lambda: [gh, "who-can", "bedrock:InvokeModel", MODEL, "--details", export,
                                    "--format", "json"],
            }
            if "what-can" in commands or "generate" in commands:
                log = os.path.join(a.dir, "org-%d-audit.jsonl" % n)
                role = audit_log(export, log)
                row["audit_kib"] = os.path.getsize(log) / 1024
                asked["what-can"] = lambda: [gh, "what-can", role, "--details", export, "--format", "json"]
                asked["generate"] = lambda: [gh, "policy", "generate", "--principal", role,
                                             "--audit-log", log]
            for cmd in commands:
                row[cmd] = medians(asked[cmd](), a.runs, a.peer_timeout)
            row["gatehouse_at"] = when
        if a.only != "gatehouse" and pruns > 0:
            row["cloudsplaining"] = medians(
                [a.cloudsplaining, "scan", "--input-file", export, "--output",
                 os.path.join(out, "cs"), "--skip-open-report"], pruns, a.peer_timeout, pcpu)
            row["peer_runs"] = pruns
            row["peer_at"] = when
        print(json.dumps({n: row}), flush=True)
        if a.results:
            with open(a.results, "w") as f:
                json.dump(rows, f, indent=1)
    shutil.rmtree(out, ignore_errors=True)
    print_table(rows)


def print_table(rows):
    def cell(m):
        if m is None:
            return "—"
        bound = "" if m[3] else "> "
        stopped = "" if m[3] else " (stopped unfinished)"
        return "%s%.2f s wall, %s%.2f s CPU, %.0f MiB%s" % (bound, m[0], bound, m[2], m[1] / 1024, stopped)

    def ratio(peer, ours, k):
        return "%s%.0f×" % ("" if peer[3] else "> ", peer[k] / ours[k])

    print("\n| accounts | export | `scan` | `review` | Cloudsplaining 0.9.1 `scan` | Cloudsplaining ÷ scan, ÷ review (CPU; wall) | peak RSS ÷ export (scan, review) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in sorted(rows):
        r = rows[n]
        cs, sc, rv = r.get("cloudsplaining"), r.get("scan"), r.get("review")
        ratios = "—"
        if cs and sc and rv:
            ratios = "%s, %s; %s, %s" % (ratio(cs, sc, 2), ratio(cs, rv, 2), ratio(cs, sc, 0), ratio(cs, rv, 0))
        mem = "—" if not (sc and rv) else "%.1f× / %.1f×" % (sc[1] / r["size_kib"], rv[1] / r["size_kib"])
        print("| %d | %.1f MiB | %s | %s | %s | %s | %s |" % (
            n, r["size_kib"] / 1024, cell(sc), cell(rv), cell(cs), ratios, mem))
    queries = [c for c in ("who-can", "what-can", "generate") if any(c in r for r in rows.values())]
    if queries:
        print("\n| accounts | export | audit log | %s |" % " | ".join("`%s`" % c for c in queries))
        print("|---:|---:|---:|%s" % ("---:|" * len(queries)))
        for n in sorted(rows):
            r = rows[n]
            print("| %d | %.1f MiB | %s | %s |" % (
                n, r["size_kib"] / 1024,
                "%.1f MiB" % (r["audit_kib"] / 1024) if "audit_kib" in r else "—",
                " | ".join(cell(r.get(c)) for c in queries)))
    if 25 in rows and 100 in rows:
        for cmd in ("scan", "review", "cloudsplaining") + tuple(queries):
            lo, hi = rows[25].get(cmd), rows[100].get(cmd)
            if lo and hi and lo[3] and hi[3]:
                print("growth 25→100 accounts, %s: %.1f× wall, %.1f× CPU, %.1f× peak RSS" % (
                    cmd, hi[0] / lo[0], hi[2] / lo[2], hi[1] / lo[1]))


if __name__ == "__main__":
    main()
