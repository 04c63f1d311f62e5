"""Uploads COUNT distinct images one at a time and times each from the upload's request to the
moment GET /api/v1/images/{id} first reads `success` (polled every 10 ms), and from the image's
`created_at` to its `embedded_at` (the server's own clock). Prints median and p95 of both.

Usage: upload_to_success.py BASE_URL API_KEY COUNT LABEL [SEED]
The images are 96 x 96 PNGs of seeded random pixels, so that no two are duplicates.
"""

import datetime
import json
import random
import statistics
import struct
import sys
import time
import urllib.request
import zlib


def png(width: int, height: int, generator: random.Random) -> bytes:
    rows = b"".join(b"\x00" + bytes(generator.getrandbits(8) for _ in range(width * 3)) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def call(request: urllib.request.Request) -> dict:
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def parse(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def percentile(values: list, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * fraction))]


def main() -> None:
    base, key, count, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    generator = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 50)
    observed, server = [], []
    for number in range(count):
        boundary = f"bench-{number}"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{number}.png\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + png(96, 96, generator) + f"\r\n--{boundary}--\r\n".encode()
        began = time.perf_counter()
        image = call(urllib.request.Request(
            f"{base}/api/v1/images", data=body, method="POST",
            headers={"X-API-Key": key, "Content-Type": f"multipart/form-data; boundary={boundary}"}))
        deadline = began + 60
        while image["embedding_status"] != "success":
            if time.perf_counter() > deadline or image["embedding_status"] == "failed":
                raise SystemExit(f"{label}: image {image['id']} is {image['embedding_status']}")
            time.sleep(0.01)
            image = call(urllib.request.Request(f"{base}/api/v1/images/{image['id']}", headers={"X-API-Key": key}))
        observed.append((time.perf_counter() - began) * 1000)
        server.append((parse(image["embedded_at"]) - parse(image["created_at"])).total_seconds() * 1000)
    print(f"  {label}: {count} uploads, one at a time")
    print(f"    upload request -> success read back: median {statistics.median(observed):7.1f} ms"
          f"  p95 {percentile(observed, 0.95):7.1f} ms")
    print(f"    created_at -> embedded_at (server):   median {statistics.median(server):7.1f} ms"
          f"  p95 {percentile(server, 0.95):7.1f} ms")
    print(f"RESULT {label} {statistics.median(observed):.1f} {percentile(observed, 0.95):.1f}")


if __name__ == "__main__":
    main()
