"""Coverage-guided fuzzing of the wire and GATT decoders with atheris (libFuzzer for Python).

    .venv/bin/pip install -e '.[fuzz]'   # atheris: the project's fuzz extra (wheels for CPython on Linux/macOS x86-64)
    .venv/bin/python bench/fuzz_decoders.py --seconds 60 [--corpus DIR]

Each input is either raw bytes for one decoder of :data:`wire.fuzz.TARGETS`, or
(structure-aware) one of :func:`wire.fuzz.seed_messages` with one field set to
an odd value, deleted or added, fed to ``decode`` and ``decode_uplink``. An
exception other than the decoders' own rejections (see :mod:`wire.fuzz`)
stops the run with the input written to ``crash-<sha1>`` (libFuzzer's
behaviour). At the end it prints the cases run and the outcomes per target by
reason, the figures in docs/security.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import atheris

with atheris.instrument_imports():  # before anything imports wire: coverage guides the mutations
    from wire.fuzz import ODD_VALUES, TARGETS, TOPICS, Tally, mutate, paths, seed_messages

TALLY = Tally()
SEEDS = [json.loads(s) for s in seed_messages()]
PATHS = [paths(s) for s in SEEDS]
NAMES = sorted(TARGETS)
RUN = {"start": 0.0, "deadline": float("inf")}


def one_input(data: bytes) -> None:
    """The fuzz target: atheris calls it with each input it generates."""
    if time.monotonic() > RUN["deadline"]:  # libFuzzer's own exit skips Python's atexit: report and stop here
        report(time.monotonic() - RUN["start"])
        sys.stdout.flush()
        os._exit(0)
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:  # raw bytes for any decoder
        TALLY.run(NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)], fdp.ConsumeBytes(fdp.remaining_bytes()))
        return
    i = fdp.ConsumeIntInRange(0, len(SEEDS) - 1)
    path = PATHS[i][fdp.ConsumeIntInRange(0, len(PATHS[i]) - 1)]
    action = ("set", "delete", "compress")[fdp.ConsumeIntInRange(0, 2)]
    value = _value(fdp)
    if fdp.ConsumeBool():
        path = (*path[:-1], fdp.ConsumeUnicodeNoSurrogates(8) or "x")  # a new key beside the old one
    payload = mutate(SEEDS[i], path, action, value)
    TALLY.run("codec.decode", payload)
    own = f"pisces/v1/dev-f/{SEEDS[i]['kind']}"
    TALLY.run("codec.decode_uplink", bytes([TOPICS.index(own) if own in TOPICS else 0]) + payload)


def _value(fdp: object) -> object:
    kind = fdp.ConsumeIntInRange(0, 4)  # type: ignore[attr-defined]
    if kind == 0:
        return ODD_VALUES[fdp.ConsumeIntInRange(0, len(ODD_VALUES) - 1)]  # type: ignore[attr-defined]
    if kind == 1:
        return fdp.ConsumeInt(9)  # type: ignore[attr-defined]
    if kind == 2:
        return fdp.ConsumeRegularFloat()  # type: ignore[attr-defined]
    if kind == 3:
        return fdp.ConsumeUnicodeNoSurrogates(40)  # type: ignore[attr-defined]
    return [fdp.ConsumeInt(2) for _ in range(fdp.ConsumeIntInRange(0, 5))]  # type: ignore[attr-defined]


def report(seconds: float) -> None:
    """Print the cases run and the outcomes per target."""
    print(f"\n{TALLY.cases} cases in {seconds:.0f} s, no crash")
    for name in NAMES:
        counts = TALLY.counts[name]
        print(f"  {name:22} {sum(counts.values()):>9}  " + ", ".join(f"{k} {n}" for k, n in counts.most_common()))


def main() -> None:
    """Parse the options and run atheris for the given time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--corpus", help="libFuzzer corpus directory (kept between runs)")
    args, rest = parser.parse_known_args()
    RUN["start"] = time.monotonic()
    RUN["deadline"] = RUN["start"] + args.seconds
    argv = [sys.argv[0], f"-max_total_time={args.seconds + 60}", "-max_len=4096", *rest]
    if args.corpus:
        argv.append(args.corpus)
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
