#!/usr/bin/env python3
"""Soak test of the AI gateway: a steady request rate through Gatehouse for a long time, on
loopback, against a canned upstream (nginx answering one fixed chat completion), while the
resident memory (RSS) of the gatehouse process is sampled.

Every call is the full gateway path (Bearer access key → policy decision with an IP and a
tag condition → audit record → proxy with the provider key). The load runs in one-minute
slices (oha at a fixed rate, or wrk at a fixed number of connections when oha is missing),
each reported with its request count, errors, achieved rate, p50 and p99; RSS is sampled
every few seconds from /proc.

It fails (exit 1) when any request failed (non-2xx or socket error), when the achieved rate
fell below 90% of the asked rate in any slice (oha only), or when RSS after the warm-up
minute grew by more than --rss-growth (default 20%) over its value at the end of warm-up.

Usage: python3 scripts/soak-gateway.py [--duration 600] [--rate 1000] [--connections 16]
                                       [--json FILE] [--tool oha|wrk]
Needs: a release build (cargo build --release -p gatehouse-cli), nginx, boto3, and oha
(`cargo install --locked oha`) or wrk.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from gateway_rig import BODY, REPO, bench_user, start_gatehouse, start_upstream, stop_all, wrk


def rss_parts(pid):
    """VmRSS and its parts (RssAnon: heap and stacks; RssFile: mapped files; RssShmem:
    shared memory such as SQLite's WAL index), in KiB."""
    parts = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                parts[key] = int(line.split()[1])
    if "VmRSS" not in parts:
        raise RuntimeError(f"no VmRSS for {pid}")
    return parts


def rss_kib(pid):
    return rss_parts(pid)["VmRSS"]


class RssSampler(threading.Thread):
    """Samples the RSS of `pid` every `every` seconds: (seconds since start, KiB)."""

    def __init__(self, pid, every):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self):
        while not self.stop.is_set():
            try:
                self.samples.append((time.monotonic() - self.t0, rss_kib(self.pid)))
            except (OSError, RuntimeError):
                return  # the process is gone; the load slices report it
            self.stop.wait(self.every)


def oha(url, auth, conns, rate, seconds):
    """One oha slice at a fixed rate: the same fields as gateway_rig.wrk."""
    out = subprocess.run(
        ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-q", str(rate), "-c", str(conns),
         "-m", "POST", "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {auth}",
         "-d", BODY, url],
        capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise SystemExit(f"oha failed: {out.stderr.strip()}")
    r = json.loads(out.stdout)
    codes = {int(k): v for k, v in r.get("statusCodeDistribution", {}).items()}
    errors = sum(v for k, v in codes.items() if not 200 <= k < 300) + sum(r.get("errorDistribution", {}).values())
    pct = r.get("latencyPercentiles", {})
    return {"p50": pct["p50"] * 1000 if pct.get("p50") is not None else None,
            "p99": pct["p99"] * 1000 if pct.get("p99") is not None else None,
            "rps": r["summary"]["requestsPerSec"], "requests": sum(codes.values()) + sum(r.get("errorDistribution", {}).values()),
            "errors": errors, "error_kinds": r.get("errorDistribution", {}),
            "statuses": codes}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=600, help="seconds of measured load after the warm-up (600)")
    ap.add_argument("--warmup", type=int, default=60, help="seconds of load before the RSS baseline (60)")
    ap.add_argument("--slice", type=int, default=60, help="seconds per reported slice (60)")
    ap.add_argument("--rate", type=int, default=1000, help="requests per second, oha only (1000)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples (5)")
    ap.add_argument("--rss-growth", type=float, default=0.20, help="largest allowed RSS growth after warm-up (0.20)")
    ap.add_argument("--tool", choices=["oha", "wrk"], default="oha" if shutil.which("oha") else "wrk")
    ap.add_argument("--upstream", choices=["nginx", "double"], default="nginx")
    ap.add_argument("--gatehouse", default=os.path.join(REPO, "target", "release", "gatehouse"))
    ap.add_argument("--json", help="also write every figure to this file")
    ap.add_argument("--extra-config", default="", help="TOML appended to gatehouse's config file")
    args = ap.parse_args()
    if not os.path.exists(args.gatehouse):
        raise SystemExit(f"{args.gatehouse} not found: cargo build --release -p gatehouse-cli")
    tmp = tempfile.mkdtemp(prefix="gh-soak-")
    procs = []
    try:
        up = start_upstream(args.upstream, tmp, procs)
        gh = start_gatehouse(args.gatehouse, tmp, up, procs, extra_config=args.extra_config)
        pid = procs[-1].pid
        key = bench_user(gh)
        url = f"http://127.0.0.1:{gh}/v1/chat/completions"

        def run_slice(seconds):
            if args.tool == "oha":
                return oha(url, key, args.connections, args.rate, seconds)
            return wrk(url, key, args.connections, seconds, tmp)

        sampler = RssSampler(pid, args.sample)
        sampler.start()
        started = time.monotonic()
        print(f"soak: {args.tool}, {args.connections} connections"
              + (f", {args.rate} req/s" if args.tool == "oha" else ", closed loop")
              + f", warm-up {args.warmup}s, then {args.duration}s; gatehouse pid {pid}", flush=True)
        warm = run_slice(args.warmup) if args.warmup else None
        baseline = rss_kib(pid)
        baseline_at = time.monotonic() - started
        slices = []
        remaining = args.duration
        while remaining > 0:
            n = min(args.slice, remaining)
            r = run_slice(n)
            r["end_s"] = round(time.monotonic() - started)
            r["rss_parts_kib"] = rss_parts(pid)
            r["rss_kib"] = r["rss_parts_kib"]["VmRSS"]
            slices.append(r)
            remaining -= n
            print(f"  slice {len(slices):2d}: {r['requests']:7d} requests, {r['errors']} errors, "
                  f"{r['rps']:8.1f} req/s, p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms, "
                  f"RSS {r['rss_kib'] / 1024:.1f} MiB (anon {r['rss_parts_kib'].get('RssAnon', 0) / 1024:.1f}, "
                  f"file {r['rss_parts_kib'].get('RssFile', 0) / 1024:.1f}, "
                  f"shmem {r['rss_parts_kib'].get('RssShmem', 0) / 1024:.1f})", flush=True)
        sampler.stop.set()
        sampler.join()
        after = [kib for t, kib in sampler.samples if t >= baseline_at]
        peak = max(after) if after else baseline
        growth = (peak - baseline) / baseline
        errors = sum(s["errors"] for s in slices) + (warm["errors"] if warm else 0)
        slow = [i + 1 for i, s in enumerate(slices) if args.tool == "oha" and s["rps"] < 0.9 * args.rate]
        result = {
            "tool": args.tool, "rate": args.rate if args.tool == "oha" else None,
            "connections": args.connections, "warmup_s": args.warmup, "duration_s": args.duration,
            "warmup": warm, "slices": slices,
            "rss": {"baseline_kib": baseline, "peak_after_warmup_kib": peak, "growth": growth,
                    "start_kib": sampler.samples[0][1] if sampler.samples else None,
                    "end_kib": sampler.samples[-1][1] if sampler.samples else None,
                    "samples": sampler.samples},
            "requests": sum(s["requests"] for s in slices), "errors": errors,
            "p50_median_ms": statistics.median(s["p50"] for s in slices),
            "p99_max_ms": max(s["p99"] for s in slices),
        }
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
        print(f"\n| slice ({args.slice} s) | ends at s | requests | errors | req/s | p50 ms | p99 ms | RSS MiB |")
        print("|---|---|---|---|---|---|---|---|")
        for i, s in enumerate(slices, 1):
            print(f"| {i} | {s['end_s']} | {s['requests']} | {s['errors']} | {s['rps']:.0f} | {s['p50']:.3f} "
                  f"| {s['p99']:.3f} | {s['rss_kib'] / 1024:.1f} |")
        samples = sampler.samples
        print(f"\nRSS: {samples[0][1] / 1024:.1f} MiB at start, {baseline / 1024:.1f} MiB after warm-up, "
              f"peak {peak / 1024:.1f} MiB after it ({growth * 100:+.1f}%), {samples[-1][1] / 1024:.1f} MiB at the end "
              f"({len(samples)} samples every {args.sample:g}s)")
        print(f"requests {result['requests']}, errors {errors}, median p50 {result['p50_median_ms']:.3f} ms, "
              f"worst p99 {result['p99_max_ms']:.3f} ms")
        failures = []
        if errors:
            failures.append(f"{errors} requests failed")
        if growth > args.rss_growth:
            failures.append(f"RSS grew {growth * 100:.1f}% after warm-up (bound {args.rss_growth * 100:.0f}%)")
        if slow:
            failures.append(f"slices {slow} ran below 90% of {args.rate} req/s")
        if procs[-1].poll() is not None:
            failures.append(f"gatehouse exited with {procs[-1].returncode}")
        if failures:
            print("FAIL: " + "; ".join(failures))
            return 1
        print("PASS")
        return 0
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
