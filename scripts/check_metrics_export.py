"""Reads a learner's exported metrics back with their consumers' own parsers and checks them
against metrics.jsonl: RUN_DIR/tensorboard with TensorBoard's EventAccumulator, RUN_DIR/metrics.prom
with prometheus_client's text parser; with --scrape, the learner's HTTP /metrics while it runs.

    .build/venv-metrics/bin/python scripts/check_metrics_export.py RUN_DIR
    .build/venv-metrics/bin/python scripts/check_metrics_export.py --scrape URL RUN_DIR

Exits 0 printing "check_metrics_export: ok …", else 1 naming the first mismatch."""
import json
import math
import os
import struct
import sys
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def fail(message):
    print(f"check_metrics_export: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def as_float32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def prometheus_name(raw):
    out = "troupe_"
    for ch in raw:
        if ch.isascii() and (ch.isalnum() or ch in "_:"):
            out += ch
        elif ch == "@":
            out += "_at_"
        else:
            out += "_"
    return out


def main(run_dir):
    train = read_train(run_dir)
    if not train:
        fail("metrics.jsonl has no train lines")

    # TensorBoard shows every kind (a troupe run's eval lines come from its own writer); Prometheus the learner's.
    lines = read_lines(run_dir)
    accumulator = EventAccumulator(os.path.join(run_dir, "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    expected_tags = {k for line in lines for k in metric_keys(line)}
    if tags != expected_tags:
        fail(f"TensorBoard scalar tags {sorted(tags)} differ from metrics.jsonl's {sorted(expected_tags)}")
    for tag in sorted(tags):
        want = sorted((line["step"], as_float32(line[tag])) for line in lines if tag in line)
        got = sorted((e.step, e.value) for e in accumulator.Scalars(tag))
        if got != want:
            fail(f"TensorBoard {tag}: {got} != metrics.jsonl {want}")

    families = check_prometheus(open(os.path.join(run_dir, "metrics.prom")).read(), train, run_dir, "metrics.prom", final=True)
    print(f"check_metrics_export: ok: {len(tags)} TensorBoard tags over {len(train)} steps, "
          f"{len(families)} Prometheus families, latest step {train[-1]['step']}")


def check_prometheus(text, train, run_dir, source, final=False):
    """Checks one Prometheus exposition against the train lines up to its troupe_step (the last one when
    final); returns its families."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    run = os.path.basename(os.path.normpath(run_dir))

    def sample(name):
        family = families.get(name)
        if family is None:
            fail(f"{source} has no {name}")
        matches = [s for s in family.samples if s.labels == {"run": run, "kind": "train"}]
        if len(matches) != 1:
            fail(f"{source} {name}: samples {family.samples}, expected one with run={run} kind=train")
        return family, matches[0].value

    family, step = sample("troupe_step")
    shown = [line for line in train if line["step"] <= step]
    if family.type != "gauge" or not shown or shown[-1]["step"] != step or (final and step != train[-1]["step"]):
        fail(f"{source}: troupe_step is a {family.type} of {step}, expected a gauge of a step in metrics.jsonl (latest {train[-1]['step']})")
    merged = {}
    for line in shown:
        merged.update({k: line[k] for k in metric_keys(line)})
    family, count = sample("troupe_metric_lines")   # the parser strips a counter's _total
    if family.type != "counter" or count != len(shown):
        fail(f"{source}: troupe_metric_lines_total is a {family.type} of {count}, expected a counter of {len(shown)}")
    taken = {}
    for raw in sorted(merged):   # names that sanitise alike (reward/mean, reward_mean): the first in name order is written
        taken.setdefault(prometheus_name(raw), raw)
    for name, raw in taken.items():
        value = merged[raw]
        family, got = sample(name)
        if family.type != "gauge" or not (got == value or (math.isnan(got) and math.isnan(value))):
            fail(f"{source} {name} ({raw}) is a {family.type} of {got}, metrics.jsonl's latest is {value}")
    return families


def metric_keys(line):
    return [k for k in line if k not in ("kind", "step", "time_s")]


def read_lines(run_dir):
    return [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl")) if line.strip()]


def read_train(run_dir):
    return [line for line in read_lines(run_dir) if line["kind"] == "train"]


def scrape(url, run_dir, within=60.0):
    """Fetches URL until it shows a train step, then checks it with prometheus_client's parser."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                content_type = response.headers.get("Content-Type", "")
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as error:
            text, content_type = None, str(error)
        if text and 'kind="train"' in text:
            break
        if time.monotonic() > deadline:
            fail(f"{url} showed no train step within {within:.0f} s (last: {content_type})")
        time.sleep(0.2)
    if not content_type.startswith("text/plain; version=0.0.4"):
        fail(f"{url} answered Content-Type {content_type!r}, not Prometheus's text/plain; version=0.0.4")
    steps = [s.value for f in text_string_to_metric_families(text) if f.name == "troupe_step"
             for s in f.samples if s.labels.get("kind") == "train"]
    if not steps:
        fail(f"{url} shows no troupe_step of kind train")
    step = steps[0]
    while not any(line["step"] >= step for line in read_train(run_dir)):   # metrics.jsonl is written first; give it a moment
        if time.monotonic() > deadline:
            fail(f"metrics.jsonl never reached step {step} that {url} shows")
        time.sleep(0.1)
    families = check_prometheus(text, read_train(run_dir), run_dir, url)
    print(f"check_metrics_export: ok: {url} served {len(families)} Prometheus families at step {int(step)}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--scrape":
        scrape(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        fail("usage: check_metrics_export.py [--scrape URL] RUN_DIR")
