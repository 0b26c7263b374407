"""Local AI runtime numbers: llama.cpp (SmolLM2-135M) and the demo ONNX classifier.

Run: ``.venv/bin/python benchmarks/bench_inference.py [--quick]`` → ``benchmarks/results/inference.json``.

Everything is measured in one run on this machine; the wrapper overhead is a ratio of medians
of interleaved calls (wrapper vs. llama-cpp-python's own `create_chat_completion` with the same
messages, JSON-schema grammar, temperature 0 and token budget), so machine load affects both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vital_desktop.demo import generate_demo_files
from vital_desktop.inference.classifier import OnnxClassifier, load_image
from vital_desktop.inference.llm import LocalLlm, default_gguf_path
from vital_desktop.inference.prompts import ClassifierSummary, PromptItem, PromptTemplate, render_messages
from vital_desktop.inference.train_classifier import train_image_classifier

SCHEMA = {
    "type": "object",
    "properties": {
        "defect_type": {"type": "string", "enum": ["none", "inclusion", "crack", "delamination", "surface_contamination"]},
        "severity": {"type": "string", "enum": ["none", "low", "medium", "high"]},
        "confidence": {"type": "number"},
    },
    "required": ["defect_type", "severity", "confidence"],
    "additionalProperties": False,
}
TEMPLATE = PromptTemplate(
    name="defect-classification",
    version="1.0.0",
    system_prompt="You inspect scintillator crystals for radiation detectors and classify visible defects.",
    user_prompt="Classify the defect of inspection {{inspection_id}} (batch {{crystal_batch_id}}).",
    output_schema=SCHEMA,
)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_llm(threads: int, structured_runs: int, overhead_runs: int, demo) -> dict:
    path = default_gguf_path()
    load_times = []
    for _ in range(3):
        llm = LocalLlm(path, n_ctx=2048, threads=threads, seed=0)
        started = time.perf_counter()
        llm.load()
        load_times.append(time.perf_counter() - started)
    llama = llm.load()

    # Prompt processing: a ~500-token prompt, cache reset before each run.
    long_messages = [
        {"role": "system", "content": "You are a careful inspector."},
        {"role": "user", "content": " ".join(f"reading {i} temperature {20 + i % 7} humidity {40 + i % 11};" for i in range(60))},
    ]
    tokens, _ = llm.format_prompt(long_messages)
    pp_rates, gen_rates = [], []
    for _ in range(3):
        llama.reset()
        started = time.perf_counter()
        llama.create_completion(prompt=tokens, max_tokens=1, temperature=0.0)
        pp_s = time.perf_counter() - started
        pp_rates.append(len(tokens) / pp_s)
    # Generation: 64 tokens after a short prompt, minus the time of the same prompt with 1 token.
    short = [{"role": "user", "content": "Write a long list of checks for a scintillator crystal inspection."}]
    short_tokens, _ = llm.format_prompt(short)
    for _ in range(3):
        llama.reset()
        started = time.perf_counter()
        llama.create_completion(prompt=short_tokens, max_tokens=1, temperature=0.0)
        one = time.perf_counter() - started
        llama.reset()
        started = time.perf_counter()
        out = llama.create_completion(prompt=short_tokens, max_tokens=65, temperature=0.0)
        total = time.perf_counter() - started
        generated = out["usage"]["completion_tokens"]
        gen_rates.append((generated - 1) / max(1e-9, total - one))

    # Threads side by side (interleaved): llama.cpp threads spin-wait, so on a shared machine
    # more threads can be much slower.
    by_threads: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(2):
        for count in (1, 2):
            other = LocalLlm(path, n_ctx=512, threads=count, seed=0)
            other.load()
            result = other.generate(short, max_tokens=32)
            by_threads[count].append(result.completion_tokens / (result.latency_ms / 1000.0))

    # Wrapper overhead vs calling llama-cpp-python directly, interleaved.
    messages = render_messages(
        TEMPLATE,
        PromptItem("INS-00001", {"inspection_id": "INS-00001", "crystal_batch_id": "XL-2024-03", "temperature_c": 31.0}),
    ).text_messages
    wrapper_s, direct_s, same_text = [], [], 0
    for _ in range(overhead_runs):
        started = time.perf_counter()
        ours = llm.generate_structured(messages, SCHEMA, max_tokens=48, seed=0)
        wrapper_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        theirs = llama.create_chat_completion(
            messages=messages,
            response_format={"type": "json_object", "schema": SCHEMA},
            temperature=0.0,
            max_tokens=48,
            seed=0,
        )
        direct_s.append(time.perf_counter() - started)
        same_text += int(ours.text == theirs["choices"][0]["message"]["content"])

    # Schema-valid rate over many structured generations on different demo items.
    refs = sorted(demo.labels)[:structured_runs]
    valid, attempts, latencies, completion_tokens = 0, 0, [], []
    with open(demo.inspection_records, encoding="utf-8") as handle:
        import csv

        records = {row["inspection_id"]: row for row in csv.DictReader(handle)}
    for index, ref in enumerate(refs):
        summary = ClassifierSummary("defect-demo", 1, demo.labels[ref], 0.6 + 0.4 * ((index * 37) % 10) / 10)
        row = records[ref]
        item = PromptItem(ref, row, image_path=str(demo.image_paths[ref]))
        rendered = render_messages(TEMPLATE, item, classifier=summary)
        result = llm.generate_structured(rendered.text_messages, SCHEMA, max_tokens=64, template_name=TEMPLATE.name, item_ref=ref)
        valid += int(bool(result.valid))
        attempts += result.attempts
        latencies.append(result.latency_ms)
        completion_tokens.append(result.completion_tokens)

    return {
        "model": path.name,
        "model_bytes": path.stat().st_size,
        "threads": threads,
        "load_s_median": round(statistics.median(load_times), 3),
        "load_s_runs": [round(x, 3) for x in load_times],
        "prompt_tokens_for_pp": len(tokens),
        "prompt_processing_tok_s_median": round(statistics.median(pp_rates), 1),
        "generation_tok_s_median": round(statistics.median(gen_rates), 1),
        "end_to_end_tok_s_by_threads_median": {str(k): round(statistics.median(v), 1) for k, v in by_threads.items()},
        "wrapper_overhead": {
            "runs": overhead_runs,
            "wrapper_s_median": round(statistics.median(wrapper_s), 4),
            "direct_create_chat_completion_s_median": round(statistics.median(direct_s), 4),
            "ratio_wrapper_over_direct": round(statistics.median(wrapper_s) / statistics.median(direct_s), 3),
            "identical_answers": f"{same_text}/{overhead_runs}",
        },
        "structured": {
            "generations": len(refs),
            "schema_valid": valid,
            "schema_valid_rate": round(valid / max(1, len(refs)), 4),
            "attempts_total": attempts,
            "latency_ms_median": round(statistics.median(latencies), 1),
            "latency_ms_p99": round(percentile(latencies, 99), 1),
            "completion_tokens_median": statistics.median(completion_tokens),
        },
    }


def bench_classifier(threads: int, demo, work: Path) -> dict:
    refs = sorted(demo.labels)
    started = time.perf_counter()
    trained = train_image_classifier([demo.image_paths[r] for r in refs], [demo.labels[r] for r in refs], demo.classes, seed=0)
    train_s = time.perf_counter() - started
    path = trained.save(work / "demo-classifier.onnx")
    classifier = OnnxClassifier(path, threads=threads)
    spec = classifier.info.preprocess
    paths = [demo.image_paths[r] for r in refs]
    classifier.run(load_image(paths[0], spec)[0][None])  # warm-up
    single = []
    for image_path in paths[:300]:
        started = time.perf_counter()
        tensor, _ = load_image(image_path, spec)
        classifier.run(tensor[None])
        single.append((time.perf_counter() - started) * 1000.0)
    batch_rates = []
    for _ in range(3):
        started = time.perf_counter()
        results = classifier.predict_paths(paths, batch_size=64)
        batch_rates.append(len(results) / (time.perf_counter() - started))
    # The model alone, on an already-decoded batch (what decoding costs by comparison).
    batch = np.stack([load_image(p, spec)[0] for p in paths[:64]])
    run_only = []
    for _ in range(20):
        started = time.perf_counter()
        classifier.run(batch)
        run_only.append(time.perf_counter() - started)
    truth = [demo.labels[r] for r in refs]
    agree = sum(int(r.predicted_class == t) for r, t in zip(results, truth, strict=False)) / len(truth)
    return {
        "model_bytes": path.stat().st_size,
        "threads": threads,
        "train_s_500_images": round(train_s, 2),
        "held_out_accuracy": trained.card["metrics"]["accuracy"],
        "accuracy_on_all_demo_images": round(agree, 4),
        "single_image_latency_ms": {
            "what": "decode PNG + preprocess + onnxruntime run, one image",
            "p50": round(percentile(single, 50), 3),
            "p99": round(percentile(single, 99), 3),
            "runs": len(single),
        },
        "batch_throughput_images_s_median": round(statistics.median(batch_rates), 1),
        "model_only_images_s_median": round(64 / statistics.median(run_only), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    parser.add_argument("--llm-threads", type=int, default=1, help="llama.cpp threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        demo = generate_demo_files(work / "demo", seed=7, n_images=500)
        demo_s = time.perf_counter() - started
        load_before = os.getloadavg()
        report = {
            "benchmark": "inference",
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "note": "2 cores shared with other work; llama.cpp threads spin-wait, so a loaded machine "
                "slows generation far more than onnxruntime. See load averages.",
            },
            "demo_generation_s_500_images": round(demo_s, 2),
            "classifier": bench_classifier(args.threads, demo, work),
            "llm": bench_llm(args.llm_threads, 10 if args.quick else 50, 3 if args.quick else 6, demo),
        }
        report["machine"]["load_average_1m_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    out = ROOT / "benchmarks" / "results" / "inference.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
