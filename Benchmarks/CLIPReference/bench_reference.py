#!/usr/bin/env python3
"""Times ONNX Runtime (and PyTorch, when installed) on the benchmark model made by setup_model.py,
with the same preprocessed inputs as `clip-bench`, and prints one JSON object per measurement.

Usage: bench_reference.py MODEL_DIR [--seconds S] [--skip-pytorch | --pytorch-only]
       bench_reference.py MODEL_DIR --serve
With --serve it keeps ONNX Runtime sessions open and answers one line per request read from
standard input, "TOWER THREADS BATCH SECONDS" (TOWER: images or texts), with {"rate": items per
second}, and to "rss" with {"peak_rss_bytes": …}: clip-bench drives it so that each of its measurements sits right beside ONNX Runtime's.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np


def measure(run, items, seconds):
    run()
    run()
    count, start = 0, time.perf_counter()
    while True:
        run()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            return count * items / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--skip-pytorch", action="store_true", help="time ONNX Runtime only")
    parser.add_argument("--pytorch-only", action="store_true", help="time PyTorch only")
    parser.add_argument("--serve", action="store_true", help="answer timing requests from standard input")
    arguments = parser.parse_args()
    info = json.load(open(os.path.join(arguments.model, "inputs.json")))
    side = info["image_size"]
    pixels = np.fromfile(os.path.join(arguments.model, "pixel_values.f32"), dtype=np.float32).reshape(-1, 3, side, side)
    ids = np.fromfile(os.path.join(arguments.model, "input_ids.i64"), dtype=np.int64).reshape(-1, info["text_length"])
    expected_images = np.fromfile(os.path.join(arguments.model, "image_embeds.f32"), dtype=np.float32).reshape(len(pixels), -1)

    import onnxruntime

    def sessions(threads):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        return tuple(
            onnxruntime.InferenceSession(
                os.path.join(arguments.model, name), options, providers=["CPUExecutionProvider"])
            for name in ("image_tower.onnx", "text_tower.onnx"))

    if arguments.serve:
        opened = {}
        print(json.dumps({"engine": f"onnxruntime {onnxruntime.__version__}"}), flush=True)
        for line in sys.stdin:
            if line.strip() == "rss":
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                print(json.dumps({"peak_rss_bytes": peak}), flush=True)
                continue
            tower, threads, batch, seconds = line.split()
            threads, batch = int(threads), int(batch)
            if threads not in opened:
                opened[threads] = sessions(threads)
            image_session, text_session = opened[threads]
            if tower == "images":
                rate = measure(lambda: image_session.run(None, {"pixel_values": pixels[:batch]}), batch, float(seconds))
            else:
                rate = measure(lambda: text_session.run(None, {"input_ids": ids[:batch]}), batch, float(seconds))
            print(json.dumps({"rate": rate}), flush=True)
        return

    for threads in () if arguments.pytorch_only else (1, 2):
        start = time.perf_counter()
        image_session, text_session = sessions(threads)
        load = time.perf_counter() - start
        check = image_session.run(None, {"pixel_values": pixels})[0]
        difference = float(np.abs(check - expected_images).max())
        for batch in (1, 8):
            images = measure(lambda: image_session.run(None, {"pixel_values": pixels[:batch]}), batch, arguments.seconds)
            texts = measure(lambda: text_session.run(None, {"input_ids": ids[:batch]}), batch, arguments.seconds)
            print(json.dumps({
                "engine": f"onnxruntime {onnxruntime.__version__}", "threads": threads, "batch": batch,
                "images_per_second": images, "texts_per_second": texts, "load_seconds": load,
                "max_difference_from_pytorch": difference,
            }), flush=True)
    if not arguments.pytorch_only:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({"engine": "onnxruntime", "peak_rss_bytes": peak}), flush=True)

    if arguments.skip_pytorch:
        return
    try:
        import torch
        from transformers import CLIPModel
    except ImportError:
        print(json.dumps({"engine": "pytorch", "skipped": "not installed"}), flush=True)
        return
    start = time.perf_counter()
    model = CLIPModel.from_pretrained(arguments.model).eval()
    load = time.perf_counter() - start
    pixel_tensor, id_tensor = torch.from_numpy(pixels), torch.from_numpy(ids)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (1, 8):
            with torch.inference_mode():
                images = measure(lambda: model.get_image_features(pixel_values=pixel_tensor[:batch]), batch, arguments.seconds)
                texts = measure(lambda: model.get_text_features(input_ids=id_tensor[:batch]), batch, arguments.seconds)
            print(json.dumps({
                "engine": f"pytorch {torch.__version__}", "threads": threads, "batch": batch,
                "images_per_second": images, "texts_per_second": texts, "load_seconds": load,
            }), flush=True)


if __name__ == "__main__":
    main()
