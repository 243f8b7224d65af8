#!/usr/bin/env python3
"""Load test: the same chat-completion request, driven by wrk, sent (1) straight to the
upstream test double, (2) through Gatehouse (Bearer access key → policy decision → audit →
proxy), (3) through LiteLLM proxy (master key, model list from its config), all on loopback
against one upstream. Reports latency percentiles at one connection (added latency =
through − direct) and the highest request rate with no errors over a few concurrency levels.

Usage: python3 scripts/bench-gateway.py [--duration 8] [--litellm /path/to/venv/bin/litellm]
                                      [--upstream double|nginx]
Needs: a release build (cargo build --release -p gatehouse-cli), wrk, aiohttp, boto3; for
`--upstream nginx` Debian's nginx, which answers with a canned completion so that the
upstream's own latency tail (a Python process's) does not hide the proxy's p99.
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile

from gateway_rig import (REPO, PROVIDER_KEY, bench_user, free_port, start_gatehouse, start_upstream, stop_all,
                         wait_port, wrk)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--levels", default="1,8,32,64")
    ap.add_argument("--litellm", default=shutil.which("litellm"))
    ap.add_argument("--gatehouse", default=os.path.join(REPO, "target", "release", "gatehouse"))
    ap.add_argument("--upstream", choices=["double", "nginx"], default="double")
    ap.add_argument("--budget", action="store_true",
                    help="give the benchmark user a principal budget and a group budget (limits far above "
                         "the load, so nothing is refused) to measure what budget enforcement adds")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gh-bench-")
    procs = []
    try:
        up = start_upstream(args.upstream, tmp, procs)
        budgets = ""
        if args.budget:
            # Every request is checked and charged against both budgets (tokens too), and the
            # counts are shared through the store every 250 ms, as with several nodes.
            budgets = ('[[gateway.budgets]]\nprincipal = "arn:gatehouse:iam::*:user/bench"\n'
                       'requests_per_minute = 1000000000\ntokens_per_minute = 1000000000000\n'
                       'tokens_per_day = 1000000000000\n'
                       '[[gateway.budgets]]\ngroup = "arn:gatehouse:iam::*:group/bench-team"\n'
                       'requests_per_minute = 1000000000\ntokens_per_day = 1000000000000\n')
        gh = start_gatehouse(args.gatehouse, tmp, up, procs, budgets)
        key = bench_user(gh, group="bench-team")
        targets = [("direct", f"http://127.0.0.1:{up}/v1/chat/completions", PROVIDER_KEY),
                   ("gatehouse", f"http://127.0.0.1:{gh}/v1/chat/completions", key)]
        if args.litellm:
            ll = free_port()
            llcfg = os.path.join(tmp, "litellm.yaml")
            with open(llcfg, "w") as f:
                f.write(f"model_list:\n  - model_name: bench-model\n    litellm_params:\n"
                        f"      model: openai/bench-model\n      api_base: http://127.0.0.1:{up}/v1\n"
                        f"      api_key: sk-upstream\ngeneral_settings:\n  master_key: sk-bench-master\n")
            llenv = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
            procs.append(subprocess.Popen([args.litellm, "--config", llcfg, "--port", str(ll), "--host", "127.0.0.1",
                                           "--num_workers", "1"], env=llenv, stdout=subprocess.DEVNULL,
                                          stderr=open(os.path.join(tmp, "litellm.log"), "w")))
            wait_port(ll, procs[-1], "litellm", timeout=180)
            targets.append(("litellm", f"http://127.0.0.1:{ll}/v1/chat/completions", "sk-bench-master"))
        # Warm up every path (connection pools, caches, LiteLLM's first-request work).
        for name, url, auth in targets:
            wrk(url, auth, 1, 2, tmp)
        results = {}
        for name, url, auth in targets:
            results[name] = {c: wrk(url, auth, c, args.duration, tmp) for c in map(int, args.levels.split(","))}
        print(json.dumps(results, indent=1))
        d1 = results["direct"][1]
        print("\n| path | p50 ms (c=1) | p99 ms (c=1) | added p50 µs | added p99 µs | max req/s with 0 errors (conns) |")
        print("|---|---|---|---|---|---|")
        for name, by_c in results.items():
            r1 = by_c[1]
            ok = [(r["rps"], c) for c, r in by_c.items() if r["errors"] == 0 and r["requests"] > 0]
            best = max(ok) if ok else (0, "-")
            add50 = "" if name == "direct" else f"{(r1['p50'] - d1['p50']) * 1000:.0f}"
            add99 = "" if name == "direct" else f"{(r1['p99'] - d1['p99']) * 1000:.0f}"
            print(f"| {name} | {r1['p50']:.3f} | {r1['p99']:.3f} | {add50} | {add99} | {best[0]:.0f} ({best[1]}) |")
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
