"""A test double for what a Gatehouse user brings: an OpenAI-compatible model server.

It speaks OpenAI's wire protocol (chat completions with and without SSE streaming,
completions, embeddings, fine-tuning jobs) on loopback, and records what it received so
that tests can check what Gatehouse forwarded (and that it forwarded nothing when it
should not have). Directives in the prompt text steer it:

- `SLEEP:<seconds>` — wait before answering (upstream timeout);
- `STREAM_DELAY:<seconds>` — pause between streamed chunks (streaming passthrough);
- `FAIL:<status>` — answer with that HTTP status and an OpenAI error body;
- `USAGE_DELAY:<seconds>` — pause before the final usage chunk of a stream;
- `NO_USAGE` — answer without `usage` (as some servers do), even when a stream asks for it.

Streams follow OpenAI's `stream_options`: with `{"include_usage": true}` every chunk carries
`"usage": null` and one more chunk (empty `choices`, the `usage`) precedes `data: [DONE]`;
otherwise no chunk has a `usage` key. `n` gives that many choices (usage counts each).

Usage: python3 upstream_double.py PORT   (prints "ready" when listening)
Introspection: GET /_requests (what was received, with `received_at` and, for whole chat
answers, `answered_at` epoch seconds), POST /_reset.
"""

import asyncio
import json
import re
import sys
import time

from aiohttp import web

RECEIVED = []
JOBS = {}


def prompt_text(body):
    parts = []
    for m in body.get("messages") or []:
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            parts += [p.get("text", "") for p in c if isinstance(p, dict)]
    for k in ("prompt", "input"):
        v = body.get(k)
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, list):
            parts += [x for x in v if isinstance(x, str)]
    return " ".join(parts)


def directive(text, name, default=None):
    m = re.search(name + r":([0-9.]+)", text)
    return float(m.group(1)) if m else default


def usage_for(text, completion=10):
    p = max(1, len(text.split()))
    return {"prompt_tokens": p, "completion_tokens": completion, "total_tokens": p + completion}


def choices_of(body):
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


async def record(request):
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    RECEIVED.append({"path": request.path, "method": request.method,
                     "headers": dict(request.headers), "body": body, "received_at": time.time()})
    return body if isinstance(body, dict) else {}


async def maybe_fail_or_sleep(text):
    sleep = directive(text, "SLEEP")
    if sleep:
        await asyncio.sleep(sleep)
    fail = directive(text, "FAIL")
    if fail:
        return web.json_response(
            {"error": {"message": "upstream says no", "type": "server_error", "param": None, "code": None}},
            status=int(fail))
    return None


async def chat(request):
    body = await record(request)
    # No await between the append in `record` and here: this is our entry.
    entry = RECEIVED[-1]
    text = prompt_text(body)
    early = await maybe_fail_or_sleep(text)
    if early is not None:
        return early
    model = body.get("model", "")
    created = int(time.time())
    words = ["echo:"] + text.split()[:8] or ["ok"]
    n = choices_of(body)
    usage = None if "NO_USAGE" in text else usage_for(text, 10 * n)
    if not body.get("stream"):
        answer = {
            "id": "chatcmpl-double", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": i, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": " ".join(words)}} for i in range(n)],
        }
        if usage:
            answer["usage"] = usage
        entry["answered_at"] = time.time()
        return web.json_response(answer)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    delay = directive(text, "STREAM_DELAY", 0.0)
    include_usage = (body.get("stream_options") or {}).get("include_usage") is True

    def chunk(choices, usage=None):
        c = {"id": "chatcmpl-double", "object": "chat.completion.chunk", "created": created,
             "model": model, "choices": choices}
        if include_usage:
            c["usage"] = usage
        return ("data: " + json.dumps(c) + "\n\n").encode()

    def each(delta, finish=None):
        return chunk([{"index": i, "delta": delta, "finish_reason": finish} for i in range(n)])

    await resp.write(each({"role": "assistant", "content": ""}))
    for w in words:
        if delay:
            await asyncio.sleep(delay)
        await resp.write(each({"content": w + " "}))
    await resp.write(each({}, finish="stop"))
    if include_usage and usage:
        usage_delay = directive(text, "USAGE_DELAY", 0.0)
        if usage_delay:
            await asyncio.sleep(usage_delay)
        await resp.write(chunk([], usage=usage))
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def completions(request):
    body = await record(request)
    text = prompt_text(body)
    early = await maybe_fail_or_sleep(text)
    if early is not None:
        return early
    answer = {
        "id": "cmpl-double", "object": "text_completion", "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [{"index": 0, "text": "echo: " + text, "finish_reason": "stop", "logprobs": None}],
    }
    if "NO_USAGE" not in text:
        answer["usage"] = usage_for(text)
    return web.json_response(answer)


async def embeddings(request):
    body = await record(request)
    text = prompt_text(body)
    inputs = body.get("input")
    n = len(inputs) if isinstance(inputs, list) else 1
    u = usage_for(text, 0)
    return web.json_response({
        "object": "list", "model": body.get("model", ""),
        "data": [{"object": "embedding", "index": i, "embedding": [0.1 * (i + 1)] * 8} for i in range(n)],
        "usage": {"prompt_tokens": u["prompt_tokens"], "total_tokens": u["prompt_tokens"]},
    })


def job_object(job_id):
    j = JOBS[job_id]
    return {"id": job_id, "object": "fine_tuning.job", "model": j["model"], "created_at": j["created_at"],
            "status": j["status"], "training_file": j["training_file"], "validation_file": None,
            "fine_tuned_model": None, "finished_at": None, "hyperparameters": {"n_epochs": "auto"},
            "organization_id": "org-double", "result_files": [], "trained_tokens": None, "error": None,
            "seed": 0}


async def create_job(request):
    body = await record(request)
    job_id = f"ftjob-{len(JOBS) + 1:04d}"
    JOBS[job_id] = {"model": body.get("model"), "created_at": int(time.time()), "status": "queued",
                    "training_file": body.get("training_file", "file-x")}
    return web.json_response(job_object(job_id))


async def get_job(request):
    await record(request)
    job_id = request.match_info["id"]
    if job_id not in JOBS:
        return web.json_response({"error": {"message": "no such job", "type": "invalid_request_error",
                                            "param": None, "code": None}}, status=404)
    return web.json_response(job_object(job_id))


async def cancel_job(request):
    await record(request)
    job_id = request.match_info["id"]
    JOBS[job_id]["status"] = "cancelled"
    return web.json_response(job_object(job_id))


async def requests_seen(request):
    return web.json_response(RECEIVED)


async def reset(request):
    RECEIVED.clear()
    return web.json_response({})


def app():
    a = web.Application(client_max_size=64 * 1024 * 1024)
    for prefix in ("/v1", ""):
        a.router.add_post(prefix + "/chat/completions", chat)
        a.router.add_post(prefix + "/completions", completions)
        a.router.add_post(prefix + "/embeddings", embeddings)
        a.router.add_post(prefix + "/fine_tuning/jobs", create_job)
        a.router.add_get(prefix + "/fine_tuning/jobs/{id}", get_job)
        a.router.add_post(prefix + "/fine_tuning/jobs/{id}/cancel", cancel_job)
    a.router.add_get("/_requests", requests_seen)
    a.router.add_post("/_reset", reset)
    return a


if __name__ == "__main__":
    port = int(sys.argv[1])
    web.run_app(app(), host="127.0.0.1", port=port, print=lambda *_: print("ready", flush=True),
                access_log=None)
