#!/usr/bin/env python3
"""Makes the tiny CLIP model and the reference outputs in Tests/Fixtures/clip-tiny.

Run once by hand when the fixtures change (CI never runs it): `scripts/clip-fixtures/make.sh`.
Hugging Face `transformers` builds a small, randomly initialised CLIPModel with the real CLIP
vocabulary, saves it as safetensors (the token embedding in F16, everything else in F32) with
its tokenizer and preprocessor files, and records, for every committed test image and every text
below, the reference preprocessing, token ids and normalised embeddings the Swift engine must
reproduce.
"""
import argparse
import gzip
import json
import os

import numpy as np
import torch
from PIL import Image, ImageOps
from safetensors.torch import load_file, save_file
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer, CLIPTokenizerFast

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(FIXTURES, "clip-tiny")

IMAGES = ["sunset.jpg", "rotated.jpg", "lake.png", "lake.gif", "forest.bmp", "forest.webp"]

TEXTS = [
    "a photo of a cat",
    "a dog on a beach",
    "A red car at night",
    "A RED CAR AT NIGHT",
    "sunset over the lake",
    "",
    " ",
    "hello",
    "Hello, World!",
    "it's a dog's life, isn't it? we'll see; you'd think they've won, I'm sure",
    "The quick brown fox jumps over the lazy dog.",
    "naïve café résumé",
    "Ångström über straße",
    "São Paulo à noite",
    "crème brûlée",
    "Zürich im Schnee",
    "東京の夜景",
    "一只在海滩上的狗",
    "서울의 거리",
    "Москва зимой",
    "Αθήνα",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "🐶🏖️",
    "a dog 🐕 on a beach 🏝",
    "👍🏽 thumbs up",
    "🇫🇷 flag",
    "!!!???...",
    "wow!!! really???",
    "---===***",
    "$100 & 50% off @ the #store",
    "email@example.com",
    "https://example.com/a/b?c=d",
    "C++ and C# and F#",
    "12345",
    "3.14159 is pi",
    "1st 2nd 3rd 4th",
    "year 2024, 10:30pm",
    "½ cup and ¾ mile",
    "tabs\tand\nnewlines",
    "   leading and trailing spaces   ",
    "multiple     spaces    between",
    "non\u00a0breaking\u2003space",
    "zero\u200bwidth",
    "e\u0301 combining accent",
    "camelCaseWords and snake_case_words",
    "don't stop believin'",
    "'quoted' and \"double quoted\"",
    "semi;colon:colon,comma",
    "(parentheses) [brackets] {braces} <angles>",
    "ALLCAPS lowercase MiXeD",
    "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "the " * 90 + "end",
    "a photograph of a mountain landscape with snow-capped peaks, a clear blue lake in the "
    "foreground, pine trees along the shore, a small wooden cabin, and a few clouds drifting "
    "across the sky at golden hour, taken with a wide-angle lens",
]


def bytes_to_unicode():
    """CLIP's reversible byte-to-character table (as in the original tokenizer)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_vocabulary(bpe_gz):
    """Writes vocab.json and merges.txt from the original bpe_simple_vocab_16e6.txt.gz."""
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(merge) for merge in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(OUT, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({token: i for i, token in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(OUT, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(" ".join(merge) + "\n" for merge in merges)


def perturb(model):
    """Random values everywhere, so that layer-norm scales and biases are tested too."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "layer_norm" in name or "layernorm" in name or "layrnorm" in name:
                parameter.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
            elif name.endswith("bias"):
                parameter.copy_(0.05 * noise)
            elif name == "logit_scale":
                continue
            else:
                parameter.add_(0.02 * noise)
        # The token embedding is stored as F16: keep the F32 reference on exactly those values.
        embedding = model.text_model.embeddings.token_embedding.weight
        embedding.copy_(embedding.to(torch.float16).to(torch.float32))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bpe", required=True, help="path to bpe_simple_vocab_16e6.txt.gz")
    arguments = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    write_vocabulary(arguments.bpe)

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=49408, hidden_size=32, intermediate_size=64, num_attention_heads=4,
            num_hidden_layers=2, max_position_embeddings=77, hidden_act="quick_gelu",
            bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=48, intermediate_size=96, num_attention_heads=4, num_hidden_layers=2,
            image_size=32, patch_size=8, hidden_act="gelu",
        ),
        projection_dim=24,
    )
    model = CLIPModel(config).eval()
    perturb(model)
    model.save_pretrained(OUT, safe_serialization=True)
    weights = load_file(os.path.join(OUT, "model.safetensors"))
    weights = {name: tensor for name, tensor in weights.items() if not name.endswith("position_ids")}
    key = "text_model.embeddings.token_embedding.weight"
    weights[key] = weights[key].to(torch.float16)
    save_file(weights, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
    # save_pretrained also wrote generation defaults the engine does not read.
    if os.path.exists(os.path.join(OUT, "generation_config.json")):
        os.remove(os.path.join(OUT, "generation_config.json"))

    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(OUT)
    fast = CLIPTokenizerFast(os.path.join(OUT, "vocab.json"), os.path.join(OUT, "merges.txt"))
    slow = CLIPTokenizer(os.path.join(OUT, "vocab.json"), os.path.join(OUT, "merges.txt"))

    texts = []
    with torch.no_grad():
        for text in TEXTS:
            ids = fast(text, truncation=True, max_length=77)["input_ids"]
            slow_ids = slow(text, truncation=True, max_length=77)["input_ids"]
            if ids != slow_ids:
                print(f"note: the slow tokenizer differs on {text!r}; the fast one is the reference")
            features = model.get_text_features(input_ids=torch.tensor([ids]))
            features = torch.nn.functional.normalize(features, dim=-1)[0]
            texts.append({"text": text, "ids": ids, "embedding": [round(float(v), 7) for v in features]})

        images = []
        for name in IMAGES:
            with Image.open(os.path.join(FIXTURES, name)) as opened:
                picture = ImageOps.exif_transpose(opened).convert("RGB")
            pixels = processor(images=picture, return_tensors="pt")["pixel_values"]
            features = torch.nn.functional.normalize(model.get_image_features(pixel_values=pixels), dim=-1)[0]
            images.append({
                "file": name,
                "pixel_values": [round(float(v), 6) for v in pixels[0].flatten()],
                "embedding": [round(float(v), 7) for v in features],
            })

    reference = {
        "made_with": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "texts": texts,
        "images": images,
    }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False, indent=0)
    print(f"wrote {len(texts)} texts and {len(images)} images to {OUT}")


if __name__ == "__main__":
    main()
