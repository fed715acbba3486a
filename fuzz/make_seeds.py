#!/usr/bin/env python3
"""Writes the checked-in seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*).

Deterministic; run from anywhere: `python3 fuzz/make_seeds.py`. Seeds named `seed-ok-*` must be
accepted by their harness and `seed-err-*` rejected with an error (tests/fuzz_corpus.rs checks
both on stable). Regression inputs found by fuzzing are kept beside them as `regress-*` and are
not written by this script.
"""

import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
SAMPLE = os.path.join(ROOT, "data", "azure2019-sample")
SEP = b"\x1e"  # prewarm_fuzz::FILE_SEPARATOR


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def head(name, rows):
    with open(os.path.join(SAMPLE, name), "rb") as f:
        return b"".join(f.readline() for _ in range(rows + 1))


# ------------------------------------------------------------------ trace_azure

DUR = (b"HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,"
       b"percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,"
       b"percentile_Average_99,percentile_Average_100\n")
MEM = b"HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1\n"


def trace(*files):
    return SEP.join(files)


def trace_seeds():
    # The bundled real sample: its first two functions (1440 minute columns).
    write("trace_azure", "ok-sample-head",
          trace(head("invocations_per_function.csv", 2), head("function_durations.csv", 2),
                head("app_memory.csv", 2)))
    inv = (b"HashFunction,HashOwner,HashApp,minute_1,minute_2,minute_3,minute_4\n"
           b"f1,o1,A,0,2,0,1\nf2,o1,A,5,0,0,0\nf3,o2,B,0,0,0,7\nf4,o1,A,0,0,0,0\n")
    dur = DUR + (b"o1,A,f1,0,0,0,0,10,12,15,20,30,90,80\no1,A,f2,0,0,0,0,40,41,45,50,55,60,70\n"
                 b"o9,Z,x,0,0,0,0,1,2,3,40,50,60,70\n")
    mem = MEM + b"o1,A,10,300,1\no8,C,10,100,1\no7,D,10,50,1\n"
    # Medians for a function without a duration row and an app without a memory row.
    write("trace_azure", "ok-one-day", trace(inv, dur, mem))
    # BOM, CRLF, quoted fields, blank lines, `3.0` counts, numeric minute headers, Trigger.
    write("trace_azure", "ok-quoted-crlf",
          trace(b"\xef\xbb\xbf\"HashOwner\",\"HashApp\",\"HashFunction\",Trigger,1,2,3\r\n\r\n"
                b"\"o1\",\"A\",\"f1\",http,3.0,0,1\r\n  \r\no1,A,f2,timer,0,0,0\r\n",
                DUR.replace(b"\n", b"\r\n") + b"o1,A,f1,0,0,0,0,1,2,3,4,5,6,7\r\n",
                MEM + b"\"o1\",\"A\",2,128.5,1\n"))
    # Three days of the 14-day layout: indices stable across days, new functions later.
    h = b"HashOwner,HashApp,HashFunction,Trigger,1,2,3\n"
    days = [
        (h + b"o1,A,f1,http,1,0,0\no1,A,f2,timer,0,0,3\n", b"600"),
        (h + b"o1,A,f3,queue,0,4,0\no1,A,f2,timer,2,0,0\no1,A,f1,http,0,0,1\n", b"900"),
        (h + b"o2,B,g1,http,1,1,1\no1,A,f1,http,1,0,0\n", b"900"),
    ]
    files = []
    for d, (inv, mb) in enumerate(days, 1):
        n = str(d).encode()
        files += [inv,
                  DUR + b"o1,A,f1,0,0,0,0," + b",".join([n] * 7) + b"\n"
                  + b"o1,A,f2,0,0,0,0,5,5,5,5,5,5,5\no2,B,g1,0,0,0,0,7,7,7,7,7,7,7\n",
                  MEM + b"o1,A,1," + mb + b",1\no2,B,1,20,1\n"]
    write("trace_azure", "ok-three-days", trace(*files))
    # Errors the reader must report (never panic on).
    write("trace_azure", "err-ragged-row",
          trace(b"HashFunction,HashOwner,HashApp,1,2\nf1,o1,A,1\n", dur, mem))
    write("trace_azure", "err-negative-count",
          trace(b"HashFunction,HashOwner,HashApp,1,2\nf1,o1,A,-1,2\n", dur, mem))
    write("trace_azure", "err-duplicate-function",
          trace(b"HashFunction,HashOwner,HashApp,1\nf1,o1,A,1\nf1,o1,A,2\n", dur, mem))
    write("trace_azure", "err-missing-column",
          trace(b"HashFunction,HashApp,1\nf1,A,1\n", dur, mem))
    write("trace_azure", "err-minutes-disagree",
          trace(b"HashFunction,HashOwner,HashApp,1,2\nf1,o1,A,1,2\n", dur, mem,
                b"HashFunction,HashOwner,HashApp,1\nf1,o1,A,1\n", dur, mem))
    write("trace_azure", "err-bad-duration",
          trace(b"HashFunction,HashOwner,HashApp,1\nf1,o1,A,1\n",
                DUR + b"o1,A,f1,0,0,0,0,1,2,nan,4,5,6,7\n", mem))


# ------------------------------------------------------------------ config_toml

def config_seeds():
    with open(os.path.join(ROOT, "deploy", "prewarm.toml"), "rb") as f:
        write("config_toml", "ok-deploy-prewarm.toml", f.read())
    write("config_toml", "ok-empty.toml", b"")
    write("config_toml", "ok-actuators.toml", b"""clock = "event"
decision_interval = "30s"
default_policy = "predictive:cost=300"
auto_register = false

[actuator]
shadow = true
min_interval = "30s"
backoff_base = "1s"
backoff_max = "5m"
resync = "60s"
poll = "5s"

[[function]]
id = "default/hello"
max = 20
target = { kind = "knative", namespace = "default", service = "hello" }
concurrency = 10

[[function]]
id = "default/hello-old"
target = { kind = "knative", namespace = "default", revision = "hello-00003", mode = "podautoscaler" }

[[function]]
id = "checkout"
memory_mb = 1024
policy = "fixed:10m"
target = { kind = "lambda", function = "checkout", qualifier = "live", region = "eu-west-1", max_concurrency = 50, max_gbs_per_hour = 40000 }

[[function]]
id = "batch.job:1"
policy = "reactive"
target = { kind = "keda" }
cold_start = "2m"

[[function]]
id = "h"
policy = "hybrid-histogram"
""")
    write("config_toml", "err-unknown-key.toml", b'grpc_adr = "127.0.0.1:9090"\n')
    write("config_toml", "err-decision-interval.toml", b'decision_interval = "15s"\n')
    write("config_toml", "err-duplicate-function.toml",
          b'[[function]]\nid = "a"\n[[function]]\nid = "a"\n')
    write("config_toml", "err-lambda-latest.toml",
          b'[[function]]\nid = "l"\n'
          b'target = { kind = "lambda", function = "f", qualifier = "$LATEST" }\n')
    write("config_toml", "err-bad-policy.toml", b'default_policy = "predictive:cost=-1"\n')


# ------------------------------------------------------------------ telemetry
# prewarm.v1.IngestRequest { repeated Sample samples = 1; }
# Sample { string function_id = 1; int64 bin_start_ms = 2; int64 bin_width_ms = 3;
#          double invocations = 4; optional double concurrency = 5;
#          optional double mean_duration_ms = 6; optional double cold_starts = 7; }

def varint(n):
    n &= (1 << 64) - 1  # int64 is two's complement on the wire
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def sample(fid, start, width, inv, conc=None, dur=None, cold=None):
    b = key(1, 2) + varint(len(fid)) + fid.encode()
    b += key(2, 0) + varint(start) + key(3, 0) + varint(width)
    b += key(4, 1) + struct.pack("<d", inv)
    for f, v in ((5, conc), (6, dur), (7, cold)):
        if v is not None:
            b += key(f, 1) + struct.pack("<d", v)
    return b


def request(samples):
    return b"".join(key(1, 2) + varint(len(s)) + s for s in samples)


T0 = 1_700_000_000_000


def telemetry_seeds():
    write("telemetry", "ok-empty", b"")
    write("telemetry", "ok-one-sample",
          request([sample("default/checkout", T0, 10_000, 12.0, dur=200.0)]))
    batch = []
    for i in range(30):
        t = T0 + i * 10_000
        batch.append(sample("default/checkout", t, 10_000, float(i % 7), dur=150.0))
        batch.append(sample("orders:v2", t, 10_000, 3.0, conc=0.5, cold=1.0))
        if i % 5 == 0:
            batch.append(sample("batch.job_1", t, 60_000, 40.0))
    write("telemetry", "ok-batch", request(batch))
    nan = float("nan")
    write("telemetry", "ok-rejections", request([
        sample("good", T0, 10_000, 1.0),
        sample("", T0, 10_000, 1.0),
        sample("bad id", T0, 10_000, 1.0),
        sample("nan", T0, 10_000, nan),
        sample("neg", T0, 10_000, -1.0),
        sample("w0", T0, 0, 1.0),
        sample("wide", T0, 3_600_001, 1.0),
        sample("conc", T0, 10_000, 1.0, conc=float("inf")),
        sample("dur", T0, 10_000, 1.0, dur=1e9),
        sample("old", 5, 10_000, 1.0),
        sample("future", T0 + 2 * 86_400_000, 10_000, 1.0),
        sample("neg-start", -1, 10_000, 1.0),
    ]))
    # A day-long gap: the event clock jumps and the catch-up ticks are capped.
    write("telemetry", "ok-gap", request([
        sample("sparse", T0, 10_000, 5.0, dur=100.0),
        sample("sparse", T0 + 86_000_000, 10_000, 5.0, dur=100.0),
        sample("hourly", T0 + 3_600_000, 3_600_000, 1000.0, conc=2.0),
    ]))
    write("telemetry", "err-truncated", request([sample("a", T0, 10_000, 1.0)])[:-3])
    write("telemetry", "err-bad-wire-type", b"\x0f\x01")


if __name__ == "__main__":
    trace_seeds()
    config_seeds()
    telemetry_seeds()
