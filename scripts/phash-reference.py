#!/usr/bin/env python3
"""Writes the perceptual-hash reference the test command checks our hashes against.

    phash-reference.py OUT_DIR

Into OUT_DIR: 60 generated pictures (seeded: the same on every run), three copies of each (half
the size, recompressed as JPEG at quality 60, 1 % cropped from each side), and reference.json,
which lists every picture (and each committed fixture Pillow reads) with the hash
`str(imagehash.phash(image))` gives it, orientation applied first, and the copies of each
generated picture. The Swift test (PerceptualHashReferenceTests) hashes the same files.
"""
import json
import os
import random
import sys

import imagehash
from PIL import Image, ImageDraw, ImageFilter, ImageOps

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures")
PICTURES = 60


def picture(rng):
    """A scene: a two-colour gradient, a few filled shapes, a blur and some grain."""
    width, height = rng.randint(160, 900), rng.randint(160, 900)
    top = [rng.randint(0, 255) for _ in range(3)]
    bottom = [rng.randint(0, 255) for _ in range(3)]
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    for _ in range(rng.randint(3, 12)):
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        x0, y0 = rng.randint(-width // 4, width), rng.randint(-height // 4, height)
        x1, y1 = x0 + rng.randint(width // 10, width // 2), y0 + rng.randint(height // 10, height // 2)
        shape = rng.choice(["ellipse", "rectangle", "polygon"])
        if shape == "ellipse":
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif shape == "rectangle":
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            draw.polygon([(rng.randint(0, width), rng.randint(0, height)) for _ in range(rng.randint(3, 6))], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2)))
    grain = Image.effect_noise((width, height), rng.uniform(2, 20)).convert("RGB")
    return Image.blend(image, grain, 0.08)


def reference_hash(path):
    with Image.open(path) as image:
        return str(imagehash.phash(ImageOps.exif_transpose(image)))


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20261207)
    entries = []
    for index in range(PICTURES):
        image = picture(rng)
        kind = ["jpg", "png", "webp"][index % 3]
        name = f"picture-{index:02d}.{kind}"
        path = os.path.join(out, name)
        image.save(path, quality=92) if kind != "png" else image.save(path)
        width, height = image.size
        copies = {
            "half": image.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.BICUBIC),
            "recompressed": image,
            "cropped": image.crop((width // 100, height // 100, width * 99 // 100, height * 99 // 100)),
        }
        copy_names = []
        for label, copy in copies.items():
            copy_name = f"picture-{index:02d}-{label}.jpg"
            copy.save(os.path.join(out, copy_name), quality=60 if label == "recompressed" else 90)
            copy_names.append(copy_name)
        entries.append({"file": path, "phash": reference_hash(path), "copies": [os.path.join(out, c) for c in copy_names]})
    for name in sorted(os.listdir(FIXTURES)):
        path = os.path.join(FIXTURES, name)
        # The intact images in the formats the API accepts.
        if not os.path.isfile(path) or name.endswith(".bmp") or name.startswith(("bomb", "corrupt", "truncated", "empty")):
            continue
        try:
            with Image.open(path) as image:
                image.load()
        except Exception:  # formats Pillow does not read (HEIC, AVIF), damaged files
            continue
        entries.append({"file": os.path.abspath(path), "phash": reference_hash(path), "copies": []})
    with open(os.path.join(out, "reference.json"), "w") as handle:
        json.dump(entries, handle, indent=1)
    print(f"phash reference: {len(entries)} images ({PICTURES} generated, {PICTURES * 3} copies) in {out}")


if __name__ == "__main__":
    main(sys.argv[1])
