#!/usr/bin/env python3
"""Hostile-file upload figures for a running server (a script, not a test).

Makes small files that are expensive to check (a progressive JPEG declaring 10000x10000, an
8x8 PNG whose zTXt chunk inflates to 50 MB, a few hundred bytes of JPEG declaring 10000x10000),
uploads each --concurrency times at once with a fresh API key, and reports every answer's status,
the wall time, /healthz latency while the uploads run, and the server's peak RSS (VmHWM) from
/proc. Needs Pillow for the progressive JPEG (the benchmark venv has it); skips that file without it.

    python3 Benchmarks/Floods/hostile_uploads.py --port 8080 --pid $(pgrep -f emulator)
"""
import argparse
import concurrent.futures
import io
import json
import os
import struct
import threading
import time
import urllib.request
import uuid
import zlib

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")


def png_with_text_bomb(inflated=50 * 1024 * 1024):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80\x40\x20" * 8 for _ in range(8)))
    text = b"Comment\x00\x00" + zlib.compress(b"A" * inflated, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"zTXt", text) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def truncated_jpeg_bomb(size=10000):
    data = bytearray(open(os.path.join(FIXTURES, "sunset.jpg"), "rb").read())
    frame = next(i for i in range(len(data) - 9) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    data[frame + 5:frame + 9] = struct.pack(">HH", size, size)
    scan = next(i for i in range(frame, len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA)
    return bytes(data[:scan + 40])


def progressive_jpeg(size=10000):
    try:
        from PIL import Image
    except ImportError:
        return None
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 120, 40)).save(buffer, "JPEG", progressive=True, quality=10)
    return buffer.getvalue()


def request(base, method, path, body=None, headers=None):
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=600) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def make_key(base):
    def post(path, body):
        status, data = request(base, "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        return json.loads(data)
    team = post("/api/v1/teams", {"name": f"Hostile {uuid.uuid4().hex[:6]}"})
    user = post("/api/v1/users", {"email": f"h{uuid.uuid4().hex[:8]}@example.com", "name": "H", "team_id": team["id"]})
    return post(f"/api/v1/auth/api-keys?user_id={user['id']}&team_id={team['id']}", {"name": "hostile"})["key"]


def upload(base, key, name, data):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"allow_duplicate\"\r\n\r\ntrue\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return request(base, "POST", "/api/v1/images", body,
                   {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-API-Key": key})[0]


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        values = dict(line.split(":", 1) for line in status if line.startswith(("VmHWM", "VmRSS")))
    return {key: int(value.split()[0]) // 1024 for key, value in values.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--big-mib", type=int, default=12, help="size of the big uploads (0 to skip them)")
    arguments = parser.parse_args()
    base = f"http://127.0.0.1:{arguments.port}"
    key = make_key(base)
    files = [("truncated-bomb.jpg", truncated_jpeg_bomb()), ("text-bomb.png", png_with_text_bomb()),
             ("progressive-10000.jpg", progressive_jpeg())]
    if arguments.big_mib:
        # Big bodies that are parsed, hashed and written in full before the image check refuses them.
        big = b"\xff\xd8\xff\xe0" + os.urandom(arguments.big_mib * 1024 * 1024)
        files.append((f"big-{arguments.big_mib}mib.jpg", big))
    print(f"idle: RSS {peak_rss_mib(arguments.pid)} MiB")
    for name, data in files:
        if data is None:
            print(f"{name}: skipped (no Pillow)")
            continue
        stop = threading.Event()
        latencies = []

        def probe():
            while not stop.is_set():
                start = time.perf_counter()
                request(base, "GET", "/healthz")
                latencies.append((time.perf_counter() - start) * 1000)
                time.sleep(0.1)
        prober = threading.Thread(target=probe)
        prober.start()
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(arguments.concurrency) as pool:
            statuses = list(pool.map(lambda _: upload(base, key, name, data), range(arguments.concurrency)))
        elapsed = time.perf_counter() - start
        stop.set()
        prober.join()
        print(f"{name} ({len(data)} bytes) x{arguments.concurrency}: statuses {sorted(statuses)} in {elapsed:.1f} s; "
              f"/healthz max {max(latencies or [0]):.0f} ms; RSS {peak_rss_mib(arguments.pid)} MiB")


if __name__ == "__main__":
    main()
