#!/usr/bin/env python3
"""prom_check.py - an independent checker of the Prometheus text exposition
format (version 0.0.4), written from the format's description, for
tests/test_metrics.c.

    python3 prom_check.py FILE      -> prints {"name{l="v",...}": value, ...} as JSON
                                       (labels sorted), exit 0; or an error and exit 1

Checks: line grammar (metric and label names, quoted label values with only
\\\\, \\" and \\n escapes, float values incl. NaN/+Inf/-Inf, optional
timestamp); at most one HELP and one TYPE per family, TYPE before the
family's first sample; a family's samples are contiguous; no series twice;
counters are named *_total; histograms have _bucket series with an "le"
label, cumulative counts that never fall, a le="+Inf" bucket equal to
_count, and a _sum.
"""
import json
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Bad(Exception):
    pass


def parse_value(s, where):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise Bad(f"{where}: bad value {s!r}")
    return float(s)


def parse_labels(s, i, where):
    """s[i] == '{'; returns (labels dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise Bad(f"{where}: bad label name at {s[i:i+20]!r}")
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise Bad(f"{where}: expected =\" after label {name}")
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise Bad(f"{where}: unterminated label value")
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt == "\\":
                    val.append("\\")
                elif nxt == '"':
                    val.append('"')
                elif nxt == "n":
                    val.append("\n")
                else:
                    raise Bad(f"{where}: bad escape \\{nxt}")
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Bad(f"{where}: raw newline in a label value")
            else:
                val.append(c)
                i += 1
        if name in labels:
            raise Bad(f"{where}: label {name} twice")
        labels[name] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] == "}":
            continue
        else:
            raise Bad(f"{where}: expected , or }} after a label value")


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return name[: -len(suffix)]
    return name


def key(name, labels):
    return name + "{" + ",".join(f'{k}="{labels[k]}"' for k in sorted(labels)) + "}"


def check(text):
    if text and not text.endswith("\n"):
        raise Bad("the text must end with a newline")
    types, helps, samples, series = {}, set(), {}, []
    done_families, current = set(), None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                fam = parts[2]
                if not NAME.fullmatch(fam):
                    raise Bad(f"{where}: bad metric name {fam!r}")
                if parts[1] == "HELP":
                    if fam in helps:
                        raise Bad(f"{where}: second HELP for {fam}")
                    helps.add(fam)
                else:
                    t = parts[3] if len(parts) > 3 else ""
                    if t not in TYPES:
                        raise Bad(f"{where}: bad type {t!r}")
                    if fam in types:
                        raise Bad(f"{where}: second TYPE for {fam}")
                    if fam in done_families or fam == current:
                        raise Bad(f"{where}: TYPE after samples of {fam}")
                    types[fam] = t
            continue
        if not line.strip():
            continue
        m = NAME.match(line)
        if not m:
            raise Bad(f"{where}: bad sample line {line!r}")
        name, i = m.group(0), m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        rest = line[i:].split()
        if not 1 <= len(rest) <= 2 or line[i:i + 1] != " ":
            raise Bad(f"{where}: expected ' value [timestamp]'")
        value = parse_value(rest[0], where)
        if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
            raise Bad(f"{where}: bad timestamp")
        fam = family_of(name, types)
        if fam != current:
            if fam in done_families:
                raise Bad(f"{where}: samples of {fam} are not together")
            if current:
                done_families.add(current)
            current = fam
        k = key(name, labels)
        if k in samples:
            raise Bad(f"{where}: series {k} twice")
        samples[k] = value
        series.append((fam, name, labels, value, where))
    for fam, t in types.items():
        own = [s for s in series if s[0] == fam]
        if t == "counter":
            if not fam.endswith("_total"):
                raise Bad(f"counter {fam} does not end in _total")
            for _, name, _, v, where in own:
                if name != fam or v < 0 or math.isnan(v):
                    raise Bad(f"{where}: bad counter sample {name} {v}")
        if t == "histogram":
            groups = {}
            for _, name, labels, v, where in own:
                rest = {k: x for k, x in labels.items() if k != "le"}
                g = groups.setdefault(key("", rest), {"buckets": [], "sum": None, "count": None})
                if name == fam + "_bucket":
                    if "le" not in labels:
                        raise Bad(f"{where}: bucket without le")
                    g["buckets"].append((parse_value(labels["le"], where), v, where))
                elif name == fam + "_sum":
                    g["sum"] = v
                elif name == fam + "_count":
                    g["count"] = v
                else:
                    raise Bad(f"{where}: {name} in histogram {fam}")
            for g in groups.values():
                b = g["buckets"]
                if not b or b[-1][0] != math.inf:
                    raise Bad(f"histogram {fam}: no le=\"+Inf\" bucket last")
                for (le0, c0, _), (le1, c1, where) in zip(b, b[1:]):
                    if le1 <= le0 or c1 < c0:
                        raise Bad(f"{where}: histogram {fam} buckets not increasing/cumulative")
                if g["sum"] is None or g["count"] is None or g["count"] != b[-1][1]:
                    raise Bad(f"histogram {fam}: _sum/_count missing or +Inf != _count")
    for fam in {s[0] for s in series}:
        if fam not in types:
            raise Bad(f"{fam} has samples but no TYPE")
    return samples


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        samples = check(text)
    except Bad as e:
        print(f"prom_check: {e}", file=sys.stderr)
        return 1
    json.dump({k: (v if math.isfinite(v) else str(v)) for k, v in samples.items()}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
