"""Reads a learner's exported metrics back with their consumers' own parsers and checks them
against metrics.jsonl: RUN_DIR/tensorboard with TensorBoard's EventAccumulator, RUN_DIR/metrics.prom
with prometheus_client's text parser.

    .build/venv-metrics/bin/python scripts/check_metrics_export.py RUN_DIR

Exits 0 printing "check_metrics_export: ok …", else 1 naming the first mismatch."""
import json
import math
import os
import struct
import sys

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
    lines = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl")) if line.strip()]
    train = [line for line in lines if line["kind"] == "train"]
    if not train:
        fail("metrics.jsonl has no train lines")
    metric_keys = lambda line: [k for k in line if k not in ("kind", "step", "time_s")]

    accumulator = EventAccumulator(os.path.join(run_dir, "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    expected_tags = {k for line in train for k in metric_keys(line)}
    if tags != expected_tags:
        fail(f"TensorBoard scalar tags {sorted(tags)} differ from metrics.jsonl's {sorted(expected_tags)}")
    for tag in sorted(tags):
        want = [(line["step"], as_float32(line[tag])) for line in train if tag in line]
        got = [(e.step, e.value) for e in accumulator.Scalars(tag)]
        if got != want:
            fail(f"TensorBoard {tag}: {got} != metrics.jsonl {want}")

    text = open(os.path.join(run_dir, "metrics.prom")).read()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    run = os.path.basename(os.path.normpath(run_dir))
    latest, merged = train[-1]["step"], {}
    for line in train:
        merged.update({k: line[k] for k in metric_keys(line)})

    def sample(name):
        family = families.get(name)
        if family is None:
            fail(f"metrics.prom has no {name}")
        matches = [s for s in family.samples if s.labels == {"run": run, "kind": "train"}]
        if len(matches) != 1:
            fail(f"metrics.prom {name}: samples {family.samples}, expected one with run={run} kind=train")
        return family, matches[0].value

    family, step = sample("troupe_step")
    if family.type != "gauge" or step != latest:
        fail(f"troupe_step is a {family.type} of {step}, expected a gauge of {latest}")
    family, count = sample("troupe_metric_lines")   # the parser strips a counter's _total
    if family.type != "counter" or count != len(train):
        fail(f"troupe_metric_lines_total is a {family.type} of {count}, expected a counter of {len(train)}")
    taken = {}
    for raw in sorted(merged):   # names that sanitise alike (reward/mean, reward_mean): the first in name order is written
        taken.setdefault(prometheus_name(raw), raw)
    for name, raw in taken.items():
        value = merged[raw]
        family, got = sample(name)
        if family.type != "gauge" or not (got == value or (math.isnan(got) and math.isnan(value))):
            fail(f"metrics.prom {name} ({raw}) is a {family.type} of {got}, metrics.jsonl's latest is {value}")

    print(f"check_metrics_export: ok: {len(tags)} TensorBoard tags over {len(train)} steps, "
          f"{len(families)} Prometheus families, latest step {latest}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: check_metrics_export.py RUN_DIR")
    main(sys.argv[1])
