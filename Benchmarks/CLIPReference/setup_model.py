#!/usr/bin/env python3
"""Makes the CLIP benchmark's inputs (never committed): a full-size ViT-B/32 CLIPModel with random
weights (transformers' default CLIPConfig is that architecture), saved as safetensors and exported
to ONNX, plus preprocessed inputs and the model's own outputs for them.

Usage: setup_model.py OUT_DIR   (the vocabulary is copied from Tests/Fixtures/clip-tiny)
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizerFast

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
IMAGES = ["sunset.jpg", "rotated.jpg", "lake.png", "lake.gif", "forest.bmp", "forest.webp", "sunset-small.jpg", "sunset.tiff"]
TEXTS = [
    "a dog on a beach", "a red car at night", "sunset over the lake", "a forest in autumn",
    "a cat sleeping on a sofa", "snow-capped mountains", "a city street in the rain", "a bowl of fruit",
]
TEXT_LENGTH = 16


class ImageTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return torch.nn.functional.normalize(self.model.get_image_features(pixel_values=pixel_values), dim=-1)


class TextTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return torch.nn.functional.normalize(self.model.get_text_features(input_ids=input_ids), dim=-1)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    config = CLIPConfig()
    model = CLIPModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(FIXTURES, "clip-tiny", name), os.path.join(out, name))
    processor = CLIPImageProcessor()
    processor.save_pretrained(out)
    tokenizer = CLIPTokenizerFast(os.path.join(out, "vocab.json"), os.path.join(out, "merges.txt"))

    pictures = []
    for name in IMAGES:
        with Image.open(os.path.join(FIXTURES, name)) as opened:
            pictures.append(ImageOps.exif_transpose(opened).convert("RGB"))
    pixels = processor(images=pictures, return_tensors="pt")["pixel_values"]
    ids = tokenizer(TEXTS, padding="max_length", max_length=TEXT_LENGTH, truncation=True, return_tensors="pt")["input_ids"]
    pixels.numpy().astype(np.float32).tofile(os.path.join(out, "pixel_values.f32"))
    ids.numpy().astype(np.int64).tofile(os.path.join(out, "input_ids.i64"))
    with torch.no_grad():
        image_tower, text_tower = ImageTower(model).eval(), TextTower(model).eval()
        image_tower(pixels).numpy().astype(np.float32).tofile(os.path.join(out, "image_embeds.f32"))
        text_tower(ids).numpy().astype(np.float32).tofile(os.path.join(out, "text_embeds.f32"))
        torch.onnx.export(
            image_tower, (pixels[:1],), os.path.join(out, "image_tower.onnx"), input_names=["pixel_values"],
            output_names=["embeds"], dynamic_axes={"pixel_values": {0: "batch"}, "embeds": {0: "batch"}}, opset_version=17)
        torch.onnx.export(
            text_tower, (ids[:1],), os.path.join(out, "text_tower.onnx"), input_names=["input_ids"],
            output_names=["embeds"], dynamic_axes={"input_ids": {0: "batch"}, "embeds": {0: "batch"}}, opset_version=17)
    with open(os.path.join(out, "inputs.json"), "w") as f:
        json.dump({"images": len(IMAGES), "texts": len(TEXTS), "text_length": TEXT_LENGTH, "image_size": 224}, f)
    print(f"wrote the random ViT-B/32 model, its ONNX export and inputs to {out}")


if __name__ == "__main__":
    main()
