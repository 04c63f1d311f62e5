#!/usr/bin/env python3
"""Runs the shell commands the documentation gives, so that the two cannot drift apart.

Every ```sh (or bash, shell) block of every Markdown file in the repository carries, on the line
before its opening fence, one HTML comment saying how it is checked:

  <!-- command-check: run; expect "TEXT" ... -->   run here, as written, by this script
  <!-- command-check: by WHAT -->                   run by another part of the test command (named)
  <!-- command-check: not here (WHY) -->            needs what no test machine has (said why)

A block without one fails the check. Two more checks run first: every relative link of every
Markdown file points at a file or folder that exists (and, with `#anchor`, at a heading there),
and every configuration variable the code reads (`variables["NAME"]`, `variables.integer("NAME"`
and the like, and the adapter factories' `variables` lists) is named on docs/configuration.md. A `run` block runs as a bash script from the repository's
root, in a process group of its own (stopped whole afterwards, with whatever it started in the
background), with BENCH_QUICK=1 (each benchmark's quick mode: the smallest sizes, one short round),
CONFIGURATION=debug (the build the test command made) and DATA_DIR in a new temporary folder. It
passes when it exits 0 within its time and its output holds every expected text; nothing about
speed is checked.

  scripts/check-documented-commands.py [--list] [--only TEXT] [FILE.md ...]

--list prints every block and how it is checked without running anything; --only runs the blocks
whose text contains TEXT. The last line is `N passed, N failed, N skipped`: the blocks run, and
those checked elsewhere or not runnable here.
"""

import argparse
import os
import pathlib
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
ANNOTATION = re.compile(r"<!--\s*command-check:\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)```\s*([A-Za-z0-9_+-]*)\s*$")
TIME_LIMIT = 900
SKIPPED_FOLDERS = {".git", "node_modules"}


class Block:
    def __init__(self, path, line, language, text, annotation):
        self.path = path
        self.line = line
        self.language = language
        self.text = text
        self.annotation = annotation

    @property
    def where(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self):
        if self.annotation is None:
            return None
        if self.annotation == "run" or self.annotation.startswith("run;"):
            return "run"
        if self.annotation.startswith("by "):
            return "by"
        if self.annotation.startswith("not here"):
            return "not here"
        return None

    @property
    def expected(self):
        return re.findall(r'expect\s+"([^"]*)"', self.annotation or "")

    @property
    def first_line(self):
        return next((line.strip() for line in self.text.splitlines() if line.strip()), "")


def markdown_files():
    for path in sorted(ROOT.rglob("*.md")):
        parts = path.relative_to(ROOT).parts
        if any(part in SKIPPED_FOLDERS or part.startswith(".build") for part in parts):
            continue
        yield path


def shell_blocks(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        language = match.group(2).lower()
        start = index
        index += 1
        body = []
        while index < len(lines) and not lines[index].strip().startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        if language not in SHELL_LANGUAGES:
            continue
        annotation = None
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        if previous >= 0:
            found = ANNOTATION.search(lines[previous])
            if found:
                annotation = found.group(1)
        yield Block(path, start + 1, language, "\n".join(body) + "\n", annotation)


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchor(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def broken_links():
    problems = []
    for path in markdown_files():
        inside_fence = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip().startswith("```"):
                inside_fence = not inside_fence
            if inside_fence:
                continue
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target) or target.startswith("<"):
                    continue
                file_part, _, fragment = target.partition("#")
                resolved = (path.parent / file_part).resolve() if file_part else path
                where = f"{path.relative_to(ROOT)}:{number}"
                if not resolved.exists():
                    problems.append(f"{where}: {target} points nowhere")
                elif fragment and resolved.is_file() and resolved.suffix == ".md":
                    headings = [anchor(h.lstrip("#")) for h in resolved.read_text(encoding="utf-8").splitlines()
                                if h.startswith("#")]
                    if fragment not in headings:
                        problems.append(f"{where}: {target}: no heading #{fragment} there")
    return problems


READS = [
    re.compile(r'variables(?:\.[a-zA-Z]+)?\(\s*"([A-Z][A-Z0-9_]+)"', re.S),
    re.compile(r'variables\["([A-Z][A-Z0-9_]+)"\]'),
]
FACTORY_LIST = re.compile(r"static let variables: Set<String> = \[([^\]]*)\]", re.S)


def undocumented_variables():
    read = set()
    for folder in ("Runtime", "Functions"):
        for source in (ROOT / folder).rglob("*.swift"):
            text = source.read_text(encoding="utf-8")
            for pattern in READS:
                read.update(pattern.findall(text))
            for listed in FACTORY_LIST.findall(text):
                read.update(re.findall(r'"([A-Z][A-Z0-9_]+)"', listed))
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", page))
    return sorted(read - documented), len(read)


def port_is_free(port):
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def stop_group(process):
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def run(block):
    """Runs one block; returns None when it passed, else why it failed."""
    ports = {int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", block.text)}
    busy = sorted(port for port in ports if not port_is_free(port))
    if busy:
        return f"port {', '.join(map(str, busy))} is already in use here; stop what listens there"
    with tempfile.TemporaryDirectory(prefix="documented-command-") as scratch:
        script = pathlib.Path(scratch) / "block.sh"
        script.write_text(block.text, encoding="utf-8")
        environment = dict(os.environ, BENCH_QUICK="1", CONFIGURATION="debug", DATA_DIR=f"{scratch}/data")
        log = pathlib.Path(scratch) / "output.log"
        started = time.monotonic()
        with open(log, "wb") as output:
            process = subprocess.Popen(
                ["bash", str(script)], cwd=ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True)
            try:
                status = process.wait(timeout=TIME_LIMIT)
            except subprocess.TimeoutExpired:
                status = None
            finally:
                stop_group(process)
        text = log.read_text(encoding="utf-8", errors="replace")
        seconds = time.monotonic() - started
        tail = "\n".join("    | " + line for line in text.splitlines()[-30:])
        if status is None:
            return f"did not finish within {TIME_LIMIT} s; the end of its output:\n{tail}"
        if status != 0:
            return f"exited with {status} after {seconds:.0f} s; the end of its output:\n{tail}"
        missing = [expected for expected in block.expected if expected not in text]
        if missing:
            return f"its output lacks {', '.join(map(repr, missing))}; the end of its output:\n{tail}"
        print(f"    ({seconds:.0f} s)")
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=pathlib.Path)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--only")
    options = parser.parse_args()
    files = [path.resolve() for path in options.files] or list(markdown_files())
    checks_failed = 0
    if not options.files and not options.list:
        links = broken_links()
        for problem in links:
            print(f"broken link: {problem}")
        print(f"{'ok' if not links else 'FAILED'}: relative links in every Markdown file")
        missing, read = undocumented_variables()
        for name in missing:
            print(f"undocumented variable: {name} is read by the code and not named on docs/configuration.md")
        print(f"{'ok' if not missing else 'FAILED'}: {read} configuration variables the code reads, each on docs/configuration.md")
        checks_failed = bool(links) + bool(missing)
    blocks = [block for path in files for block in shell_blocks(path)]
    unannotated = [block for block in blocks if block.kind is None]
    for block in unannotated:
        print(f"{block.where}: a shell block without a valid `<!-- command-check: run | by … | not here (…) -->` "
              f"line before it ({block.first_line})")
    passed = failed = elsewhere = 0
    for block in blocks:
        if block.kind is None:
            continue
        if block.kind != "run" or options.list or (options.only and options.only not in block.text):
            if block.kind != "run" or options.list:
                print(f"{block.kind:8}  {block.where}  {block.first_line}"
                      + ("" if block.kind == "run" else f"  [{block.annotation}]"))
            elsewhere += block.kind != "run"
            continue
        print(f"run       {block.where}  {block.first_line}", flush=True)
        failure = run(block)
        if failure:
            failed += 1
            print(f"  FAILED: {failure}", flush=True)
        else:
            passed += 1
    failed += len(unannotated) + checks_failed
    print(f"documented commands: {elsewhere} checked elsewhere or not runnable here (skipped below)")
    print(f"{passed} passed, {failed} failed, {elsewhere} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
