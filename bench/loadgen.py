"""A small keep-alive HTTP/1.1 load generator for signed WeChat messages (asyncio streams, no deps).

Used by the benchmarks in this folder; each request carries a fresh MsgId so the dedup cache never
short-circuits the work being measured.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

_counter = itertools.count(int(time.time() * 1000) * 1000 + os.getpid() % 1000 * 10**7)


def sign(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted((token, *parts))).encode()).hexdigest()


def text_message(openid: str, content: str) -> bytes:
    n = next(_counter)
    return (
        f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{n}</MsgId></xml>"
    ).encode()


@dataclass
class Result:
    label: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000

    def line(self) -> str:
        return (f"{self.label:<28} {self.rps:8.0f} req/s   p50 {self.pct(0.50):6.1f} ms   "
                f"p99 {self.pct(0.99):6.1f} ms   ({self.requests} ok, {self.errors} errors)")


async def _worker(host: str, port: int, path: str, body_fn: Callable[[], bytes], stop: float,
                  lat: list[float], errs: list[int], expect: bytes | None) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop:
            body = body_fn()
            req = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            t0 = time.perf_counter()
            writer.write(req)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            payload = await reader.readexactly(length)
            dt = time.perf_counter() - t0
            ok = head.startswith(b"HTTP/1.1 200") and (expect is None or expect in payload)
            if ok:
                lat.append(dt)
            else:
                errs.append(1)
    finally:
        writer.close()


def run(label: str, host: str, port: int, path: str, body_fn: Callable[[], bytes], seconds: float = 5.0,
        concurrency: int = 16, expect: bytes | None = None) -> Result:
    async def main() -> Result:
        lat: list[float] = []
        errs: list[int] = []
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*[_worker(host, port, path, body_fn, stop, lat, errs, expect)
                               for _ in range(concurrency)])
        return Result(label, len(lat), len(errs), time.perf_counter() - start, lat)

    return asyncio.run(main())


def wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.3).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"server on {host}:{port} did not start")


def summary(results: list[Result]) -> str:
    return "\n".join(r.line() for r in results)


__all__ = ["Result", "run", "sign", "statistics", "summary", "text_message", "wait_port"]
