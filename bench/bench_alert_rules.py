"""The rule evaluator's speed: ours against the evaluator before the hot-path work, side by side in one run.

Both evaluate the same summary messages (5 windows each, ordinary values, 2,000
patients round-robin, as ``bench_ingest.py`` sends) from each patient's state
read back from JSON and written to JSON again, as the ingest does per batch.
The reference is ``server/rules.py`` as of commit 7231e0f (``asdict`` per window
and parameter, ``dataclasses.replace`` per step), taken from this repository's
git history; the two must also agree on every state and action (checked).

    .venv/bin/python bench/bench_alert_rules.py [--messages 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ingest import payloads  # noqa: E402
from server import rules  # noqa: E402
from server.ingest import decode_one  # noqa: E402
from wire import Summary  # noqa: E402

REFERENCE_COMMIT = "7231e0f"


def reference_rules(tmp: Path) -> ModuleType:
    """The reference evaluator, loaded from git history as a module of its own."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{REFERENCE_COMMIT}:server/rules.py"],
                            check=True, capture_output=True, text=True).stdout  # fmt: skip
    path = tmp / "reference_rules.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("reference_rules", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_rules"] = module
    spec.loader.exec_module(module)
    return module


def run(module: Any, messages: list[Summary]) -> tuple[float, dict[str, Any], list[Any]]:
    """Windows/s, the final states (through JSON, then as plain values) and every action's fields."""
    config, states, actions = module.RuleConfig(), {}, []
    start = time.perf_counter()
    for msg in messages:
        state, found = module.evaluate_windows(module.RuleState.from_json(states.get(msg.device)), msg.windows, config)
        states[msg.device] = state.to_json()
        actions.extend((a.kind, a.parameter, a.level, a.time, a.trigger) for a in found)
    rate = sum(len(m.windows) for m in messages) / (time.perf_counter() - start)
    return rate, {device: canonical(module, j) for device, j in states.items()}, actions


def canonical(module: Any, stored: dict[str, Any]) -> tuple[Any, ...]:
    """A stored state as plain values, whatever JSON form the module writes (ours is compact since STATE_FORMAT 2)."""
    state = module.RuleState.from_json(stored)
    params = {k: (p.level, p.yellow_since, p.red_since, p.within_since, p.last_end) for k, p in state.params.items()}
    return params, state.last_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each; the best counts")
    args = parser.parse_args()
    messages = [m for t, p in payloads(args.messages, 5, 2_000) if isinstance(m := decode_one(t, p).msg, Summary)]
    with tempfile.TemporaryDirectory() as tmp:
        reference = reference_rules(Path(tmp))
        best = {"reference": 0.0, "ours": 0.0}
        for _ in range(args.rounds):
            ref_rate, ref_states, ref_actions = run(reference, messages)
            our_rate, our_states, our_actions = run(rules, messages)
            if (ref_states, ref_actions) != (our_states, our_actions):
                raise SystemExit("the evaluators disagree")
            best = {"reference": max(best["reference"], ref_rate), "ours": max(best["ours"], our_rate)}
    print(f"{len(messages):,} messages x 5 windows, states through JSON; identical states and actions")
    print(f"reference (commit {REFERENCE_COMMIT}): {best['reference']:10,.0f} windows/s")
    print(f"ours:                       {best['ours']:10,.0f} windows/s = {best['ours'] / best['reference']:.1f} x")


if __name__ == "__main__":
    main()
