#!/usr/bin/env python3
"""Makes the committed test images in Tests/Fixtures.

Run once by hand when the set changes (CI does not run it):
    python3 -m venv /tmp/fixtures && /tmp/fixtures/bin/pip install Pillow==11.0.0
    /tmp/fixtures/bin/python scripts/make-test-images.py
HEIC and AVIF are written with the `vips` command (Debian's libvips-tools).
"""
import io
import os
import struct
import subprocess
import zlib

from PIL import Image, ImageDraw

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures")


def scene(sky, ground, sun, size=(320, 240), seed=0):
    """A simple landscape: sky gradient, ground, a sun and a few stripes."""
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        if y < height * 0.6:
            colour = tuple(int(c * (1 - 0.4 * t)) for c in sky)
        else:
            colour = tuple(int(c * (0.7 + 0.3 * t)) for c in ground)
        draw.line([(0, y), (width, y)], fill=colour)
    draw.ellipse([width * 0.65, height * 0.1, width * 0.85, height * 0.35], fill=sun)
    for i in range(6):
        x = (i * 53 + seed * 17) % width
        draw.rectangle([x, height * 0.65, x + 12, height * 0.95], fill=(40, 30, 20))
    return image


def exif_bytes(orientation=None, with_camera=True):
    exif = Image.Exif()
    if with_camera:
        exif[0x010F] = "Acme"                      # Make
        exif[0x0110] = "Acme Pocket 3"             # Model
        exif[0x0131] = "fixture-maker"             # Software
        exif[0x8769] = {0x9003: "2024:05:01 12:30:00", 0xA434: "Acme 24mm f/2"}  # DateTimeOriginal, LensModel
        exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}  # GPS
    if orientation:
        exif[0x0112] = orientation
    return exif.tobytes()


def save(image, name, **options):
    path = os.path.join(OUT, name)
    image.save(path, **options)
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    red = scene((200, 60, 40), (120, 80, 30), (255, 220, 120), seed=1)
    blue = scene((40, 90, 210), (20, 110, 60), (250, 250, 250), seed=2)
    green = scene((60, 170, 80), (30, 60, 30), (240, 240, 90), seed=3)

    save(red, "sunset.jpg", quality=85, exif=exif_bytes())
    # The same scene, resized and recompressed: a near-duplicate for similarity search.
    save(red.resize((300, 225)), "sunset-small.jpg", quality=70)
    save(blue, "lake.png")
    save(green, "forest.webp", quality=80)
    save(blue.convert("P", palette=Image.ADAPTIVE, colors=64), "lake.gif")
    save(green.resize((120, 90)), "forest.bmp")
    save(red, "sunset.tiff", compression="tiff_lzw")
    # Stored 64x32 (landscape); orientation 6 says "rotate 90° clockwise to display".
    rotated = scene((200, 60, 40), (120, 80, 30), (255, 220, 120), size=(64, 32))
    save(rotated, "rotated.jpg", quality=90, exif=exif_bytes(orientation=6, with_camera=False))

    png = os.path.join(OUT, "lake.png")
    subprocess.run(["vips", "heifsave", png, os.path.join(OUT, "lake.heic"), "--Q", "40"], check=True)
    subprocess.run(
        ["vips", "heifsave", png, os.path.join(OUT, "lake.avif"), "--Q", "40", "--compression", "av1"], check=True)

    with open(os.path.join(OUT, "sunset.jpg"), "rb") as source:
        whole = source.read()
    with open(os.path.join(OUT, "truncated.jpg"), "wb") as target:
        target.write(whole[: len(whole) // 2])
    # Whole length, every marker intact, but 300 bytes of 0xAA in the middle of the entropy-coded
    # scan: a decoder that only warns about corrupt data would accept it.
    corrupt = bytearray(whole)
    scan = corrupt.find(b"\xff\xda")
    scan_data = scan + 2 + int.from_bytes(corrupt[scan + 2 : scan + 4], "big")
    middle = scan_data + (len(corrupt) - scan_data) // 2
    corrupt[middle : middle + 300] = b"\xaa" * 300
    with open(os.path.join(OUT, "corrupt-scan.jpg"), "wb") as target:
        target.write(corrupt)

    # A PNG whose header declares 50000 x 50000 pixels, with a little pixel data: a
    # decompression bomb must be refused from the header alone.
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")
    with open(os.path.join(OUT, "bomb.png"), "wb") as target:
        target.write(bomb)

    with open(os.path.join(OUT, "notes.jpg"), "w") as target:
        target.write("These are meeting notes, not a picture.\n")
    open(os.path.join(OUT, "empty.jpg"), "wb").close()


if __name__ == "__main__":
    main()
