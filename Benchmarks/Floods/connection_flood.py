#!/usr/bin/env python3
"""Connection flood and slow-client figures for a running server (a script, not a test).

Opens up to N connections that each send a request they never finish, as a flood of slow clients
would: half a request head (`--request half-head`), or a whole head declaring a body of 1 MB that
never comes, to a route that answers without reading it (`--request declared-body`: `POST /nope`).
While they are held, and again once they are dropped, measures /healthz from fresh connections
(`--healthz-tries` of them); reports whether the server process is alive, how many flood
connections it closed (the connection limit, timeouts, early answers), and its resident memory
(VmRSS, VmHWM) from /proc.

    python3 Benchmarks/Floods/connection_flood.py --port 8080 --pid $(pgrep -f emulator) --connections 20000
    python3 Benchmarks/Floods/connection_flood.py --port 8080 --pid $(pgrep -f emulator) --connections 600 --request declared-body
"""
import argparse
import os
import resource
import select
import socket
import time


def rss_kib(pid):
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def healthz_ms(port, timeout=5.0):
    start = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: flood\r\nConnection: close\r\n\r\n")
            answer = b""
            while True:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                answer += chunk
        ok = answer.startswith(b"HTTP/1.1 200")
        return (time.perf_counter() - start) * 1000, ok
    except OSError as error:
        return (time.perf_counter() - start) * 1000, f"failed: {error}"


def healthz_tries(port, tries):
    """`tries` requests to /healthz: how many answered 200, and the slowest, in ms."""
    results = [healthz_ms(port) for _ in range(tries)]
    answered = sum(1 for _, ok in results if ok is True)
    return f"{answered} of {tries} answered 200, slowest {max(ms for ms, _ in results):.0f} ms"


REQUESTS = {
    "half-head": b"GET /healthz HTTP/1.1\r\nHost: flood\r\n",
    "declared-body": b"POST /nope HTTP/1.1\r\nHost: flood\r\nContent-Length: 1000000\r\n\r\n",
}


def closed(connection):
    """Whether the server has closed a flood connection (read past any answer it sent)."""
    try:
        while True:
            if connection.recv(65536) == b"":
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server process, for RSS and liveness")
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--hold", type=float, default=5.0, help="seconds to hold the flood before dropping it")
    parser.add_argument("--request", choices=sorted(REQUESTS), default="half-head")
    parser.add_argument("--healthz-tries", type=int, default=5, help="requests to /healthz at each measurement")
    arguments = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    target = min(arguments.connections, hard - 64)

    print(f"idle:           RSS {rss_kib(arguments.pid)}; /healthz {healthz_ms(arguments.port)}")
    held = []
    opened = 0
    failed_connects = 0
    start = time.perf_counter()
    for index in range(target):
        try:
            connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            connection.setblocking(False)
            connection.connect_ex(("127.0.0.1", arguments.port))
            held.append(connection)
            opened += 1
        except OSError:
            failed_connects += 1
        if index % 1000 == 999 or index == target - 1:
            # Send the half heads of the last thousand once they are connected.
            poller = select.poll()
            batch = {connection.fileno(): connection for connection in held[-(index % 1000 + 1):]}
            for descriptor in batch:
                poller.register(descriptor, select.POLLOUT)
            deadline = time.monotonic() + 2.0
            while batch and time.monotonic() < deadline:
                for descriptor, _ in poller.poll(100):
                    poller.unregister(descriptor)
                    try:
                        batch.pop(descriptor).send(REQUESTS[arguments.request])
                    except OSError:
                        pass
    print(f"flood:          {opened} connections opened in {time.perf_counter() - start:.1f} s "
          f"({failed_connects} failed to open)")
    print(f"under flood:    alive {alive(arguments.pid)}; RSS {rss_kib(arguments.pid)}; "
          f"/healthz {healthz_tries(arguments.port, arguments.healthz_tries)}")
    time.sleep(arguments.hold)
    closed_by_server = sum(1 for connection in held if closed(connection))
    print(f"after {arguments.hold:.0f} s:      alive {alive(arguments.pid)}; {closed_by_server} of {opened} "
          f"flood connections closed by the server; /healthz {healthz_tries(arguments.port, arguments.healthz_tries)}")
    for connection in held:
        connection.close()
    time.sleep(1.0)
    print(f"flood dropped:  alive {alive(arguments.pid)}; RSS {rss_kib(arguments.pid)}; "
          f"/healthz {healthz_ms(arguments.port)}")


if __name__ == "__main__":
    main()
