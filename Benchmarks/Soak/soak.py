#!/usr/bin/env python3
"""A bounded mixed load against a running emulator (a benchmark, not a test): uploads, searches,
listings and deletes from several clients, for a given time, over a library kept at a bounded size
(`--library`, 300 images: past it, each upload deletes one first), so that what grows is the server
and not its data, printing per window (a minute by
default) the server's resident memory, its open file descriptors and the p50/p99 latency of the
requests answered in it. At the end it compares the last window with the third (after two windows
of warm-up): growth of memory and descriptors, and p99 against the first window's.

    python3 Benchmarks/Soak/soak.py --base http://127.0.0.1:8080 --key imk_... --pid 1234 --minutes 10
"""
import argparse
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
import uuid

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")
IMAGES = ["sunset.jpg", "lake.png", "forest.webp", "lake.gif", "rotated.jpg", "sunset-small.jpg"]
WORDS = ["sunset", "lake", "forest", "red", "calm", "evening", "trees", "water"]


def server_state(pid):
    """(resident memory in MiB, open file descriptors) of the server process."""
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Load:
    def __init__(self, base, key, seed, library):
        self.base, self.key = base.rstrip("/"), key
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.samples = []  # (time answered, seconds taken, kind, status)
        self.mine = []  # image ids this load uploaded and has not deleted
        self.library = library  # the most images kept: past it, an upload deletes one first
        self.bodies = {name: open(os.path.join(FIXTURES, name), "rb").read() for name in IMAGES}

    def request(self, method, path, body=None, headers=None):
        request = urllib.request.Request(self.base + path, data=body, method=method)
        request.add_header("X-API-Key", self.key)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status, data = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, data = error.code, error.read()
        except OSError:
            status, data = 0, b""
        return status, data, time.perf_counter() - started

    def upload(self, rng):
        with self.lock:
            full = len(self.mine) >= self.library
        if full:
            # The library stays bounded, so that what grows is the server, not its data.
            self.delete(rng)
        name = rng.choice(IMAGES)
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n").encode()
        body += self.bodies[name] + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\n".encode()
        body += (rng.choice(WORDS) + f"\r\n--{boundary}--\r\n").encode()
        status, data, took = self.request(
            "POST", "/api/v1/images?allow_duplicate=true", body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status == 201:
            with self.lock:
                self.mine.append(json.loads(data)["id"])
        return status, took

    def search(self, rng):
        status, _, took = self.request("GET", f"/api/v1/search?q={rng.choice(WORDS)}&similarity_threshold=0")
        return status, took

    def listing(self, rng):
        status, _, took = self.request("GET", f"/api/v1/images?limit=50&skip={rng.randrange(0, 50)}")
        return status, took

    def delete(self, rng):
        with self.lock:
            if len(self.mine) < min(20, self.library):
                return None
            image = self.mine.pop(rng.randrange(len(self.mine)))
        status, _, took = self.request("DELETE", f"/api/v1/images/{image}")
        return status, took

    def client(self, seed, until, interval):
        rng = random.Random(seed)
        next_start = time.monotonic()
        kinds = [("upload", self.upload, 30), ("search", self.search, 30), ("list", self.listing, 25),
                 ("delete", self.delete, 15)]
        while time.monotonic() < until:
            # Paced: a soak measures a load the server sustains, not one that outruns it.
            next_start += interval
            time.sleep(max(0.0, next_start - time.monotonic()))
            kind, action, _ = rng.choices(kinds, weights=[weight for *_, weight in kinds])[0]
            result = action(rng)
            if result is None:
                continue
            status, took = result
            with self.lock:
                self.samples.append((time.monotonic(), took, kind, status))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--key", required=True, help="an API key of the team the load works in")
    parser.add_argument("--pid", type=int, required=True, help="the server process")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--window", type=float, default=60, help="seconds per line of the table")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--library", type=int, default=300, help="the most images the load keeps at once")
    parser.add_argument("--rate", type=float, default=40, help="requests a second, all clients together")
    arguments = parser.parse_args()

    load = Load(arguments.base, arguments.key, arguments.seed, arguments.library)
    start = time.monotonic()
    until = start + arguments.minutes * 60
    interval = arguments.clients / arguments.rate
    threads = [threading.Thread(target=load.client, args=(arguments.seed + index, until, interval), daemon=True)
               for index in range(arguments.clients)]
    for thread in threads:
        thread.start()
    print(f"soak: {arguments.clients} clients at {arguments.rate:g} requests/s in all, {arguments.minutes:g} min, "
          f"windows of {arguments.window:g} s "
          f"(uploads 30 %, searches 30 %, listings 25 %, deletes 15 %; at most {arguments.library} images kept, "
          f"an upload past that deleting one first); server pid {arguments.pid}")
    print(f"{'window':>6} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'fds':>5}")
    rows = []
    window = 0
    while True:
        window_end = start + (window + 1) * arguments.window
        time.sleep(max(0.0, min(window_end, until) - time.monotonic()))
        with load.lock:
            answered = [sample for sample in load.samples
                        if start + window * arguments.window <= sample[0] < window_end]
        rss, fds = server_state(arguments.pid)
        latencies = [took for _, took, _, _ in answered]
        errors = sum(1 for *_, status in answered if status == 0 or status >= 500)
        row = (window + 1, len(answered), errors, percentile(latencies, 0.5), percentile(latencies, 0.99), rss, fds)
        rows.append(row)
        print(f"{row[0]:>6} {row[1]:>9} {row[2]:>7} {row[3]:>8.1f} {row[4]:>8.1f} {row[5]:>8.1f} {row[6]:>5}", flush=True)
        window += 1
        if window_end >= until:
            break
    for thread in threads:
        thread.join(timeout=60)
    total_errors = sum(row[2] for row in rows)
    baseline = rows[2] if len(rows) > 2 else rows[0]
    last = rows[-1]
    print(f"soak summary: {sum(row[1] for row in rows)} requests, {total_errors} server errors or failed connections; "
          f"from window {baseline[0]} to {last[0]}: RSS {100 * (last[5] / baseline[5] - 1):+.1f} %, "
          f"descriptors {100 * (last[6] / max(1, baseline[6]) - 1):+.1f} %; "
          f"p99 last / first window {last[4] / rows[0][4]:.2f}x")


if __name__ == "__main__":
    main()
