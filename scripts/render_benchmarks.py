#!/usr/bin/env python3
"""Renders BENCHMARKS.md from the reports in target/bench/*.json.

Each benchmark and campaign gets its command, its latest figures, their date and
machine, and the goals, each figure marked as meeting or missing its goal. The text
between the notes markers of the existing BENCHMARKS.md is kept as it is. Prints the
goals missed (or without figures) at the end. Standard library only.

Usage: render_benchmarks.py [--bench-dir DIR] [--out FILE]
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES_BEGIN = "<!-- notes: begin (kept when this file is rendered again) -->"
NOTES_END = "<!-- notes: end -->"

MEETS = "meets"
FLOOR = "meets the floor"
MISSES = "**MISSES**"
NO_FIGURES = "no figures"

# Goals the bench does not write into its report.
P2P_GOALS = {  # benches/p2p.rs goal_for(), 64 clients
    "on_us": {"goal_per_s": 10_000, "goal_p99_ms": 20, "floor_per_s": 5_000, "floor_p99_ms": 25},
    "sdk": {"goal_per_s": 3_000, "goal_p99_ms": None, "floor_per_s": 1_500, "floor_p99_ms": None},
}
SDK_EFFICIENCY_GOAL = 0.9
CRASH_CYCLES_GOAL = 20
MODEL_LONG_RUN_GOAL = 10_000
MODEL_CI_GOAL = 256
FUZZ_SECONDS_GOAL = 30
FAULT_MODES = ["auto", "accept_party", "accept_quote", "accept_quote, SDK stops twice"]
CRASH_MODES = ["accept_quote", "auto"]


def load(bench_dir, name):
    path = bench_dir / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def num(x, digits=0):
    if x is None:
        return "–"
    if isinstance(x, (int, float)) and digits == 0:
        return f"{round(x):,}"
    return f"{x:,.{digits}f}"


def machine_line(report):
    m = (report or {}).get("machine")
    if not m:
        return "machine not recorded"
    parts = [f"{m.get('nproc', '?')} × {m.get('cpu_model') or '?'}"]
    if m.get("mem_total_mb"):
        parts.append(f"{m['mem_total_mb'] / 1024:.0f} GiB")
    if m.get("kernel"):
        parts.append(f"Linux {m['kernel']}")
    if m.get("data_dir_filesystem"):
        parts.append(f"data on {m['data_dir_filesystem']}")
    return ", ".join(parts)


def header(title, command, report, extra=""):
    lines = [f"## {title}", "", f"Command: `{command}`{extra}", ""]
    if report is None:
        lines += ["No report yet (the file is missing from `target/bench/`).", ""]
    else:
        date = report.get("date") or "date not recorded"
        lines += [f"Latest run: {date}, {machine_line(report)}.", ""]
    return lines


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return out + [""]


class Summary:
    """The goals-at-a-glance table, filled as the sections are rendered."""

    def __init__(self):
        self.rows = []

    def add(self, what, goal, latest, verdict, date):
        self.rows.append((what, goal, latest, verdict, (date or "–")[:10]))

    def missing(self):
        return [r for r in self.rows if r[3] in (MISSES, NO_FIGURES)]


def throughput_verdict(goal, per_s, p99):
    def within(bound):
        return bound is None or (p99 is not None and p99 <= bound)

    if per_s is None:
        return NO_FIGURES
    if per_s >= goal["goal_per_s"] and within(goal.get("goal_p99_ms")):
        return MEETS
    if per_s >= goal["floor_per_s"] and within(goal.get("floor_p99_ms")):
        return FLOOR
    return MISSES


def goal_text(goal):
    def part(per_s, p99):
        return f"≥ {num(per_s)}/s" + (f" p99 ≤ {num(p99)} ms" if p99 else "")

    text = part(goal["goal_per_s"], goal.get("goal_p99_ms"))
    if goal["floor_per_s"] != goal["goal_per_s"]:
        text += f" (floor {part(goal['floor_per_s'], goal.get('floor_p99_ms'))})"
    return text


def render_p2p(r, s):
    out = header("P2P over HTTP", "cargo bench --bench p2p", r,
                 " (`SYSGP_BENCH_QUICK=1` short, `SYSGP_BENCH_ONLY=on_us,sdk` a subset)")
    rows = {(x.get("scenario"), x.get("clients")): x for x in (r or {}).get("rows", [])}
    date = (r or {}).get("date")
    if r:
        out[-2] += (f" {r.get('measure_s')} s per point after {r.get('warmup_s')} s warm-up; "
                    f"scenarios: {', '.join(r.get('only') or ['all'])}.")
        body = []
        for x in r.get("rows", []):
            goal = x.get("goal")
            eff = f" (efficiency {x['efficiency']:.2f})" if x.get("efficiency") is not None else ""
            body.append([x.get("name"), x.get("clients"), num(x.get("throughput_per_s")),
                         num(x.get("p50_ms"), 2), num(x.get("p99_ms"), 2), x.get("errors", "–"),
                         (goal_text(goal) if goal else "") + eff, x.get("verdict") or ""])
        out += table(["scenario", "clients", "req/s", "p50 ms", "p99 ms", "errors", "goal", "bench's verdict"], body)
    for key, name in [("on_us", "P2P on-us, 64 clients"), ("sdk", "P2P through the SDK, sim 0 ms, 64 clients")]:
        x = rows.get((key, 64))
        goal = (x or {}).get("goal") or P2P_GOALS[key]
        per_s, p99 = (x or {}).get("throughput_per_s"), (x or {}).get("p99_ms")
        latest = f"{num(per_s)}/s, p99 {num(p99, 1)} ms" if x else "not in the latest run"
        s.add(name, goal_text(goal), latest, throughput_verdict(goal, per_s, p99), date if x else None)
    x = rows.get(("sdk_latency_50ms", 64))
    eff = (x or {}).get("efficiency")
    verdict = NO_FIGURES if eff is None else (MEETS if eff >= SDK_EFFICIENCY_GOAL else MISSES)
    latest = f"{eff:.2f} ({num(x.get('throughput_per_s'))}/s)" if eff is not None else "not in the latest run"
    s.add("SDK efficiency, sim 50 ms, 64 clients", f"≥ {SDK_EFFICIENCY_GOAL} × clients ÷ 50 ms", latest, verdict,
          date if x else None)
    return out


BULK_PARTS = [
    ("ingest 1,000,000 rows", "ingest", "1M-row file to AWAITING_APPROVAL",
     "≤ 10 s and ≤ 150 MB (floor ≤ 15 s, ≤ 250 MB)"),
    ("processing", "processing", "bulk items/s, 8 workers, sim 0 ms", "≥ 2,000 items/s"),
    ("efficiency", "efficiency", "bulk efficiency, 32 workers, sim 50 ms", "≥ 0.9 × workers ÷ latency"),
    ("p2p_during_job", "p2p_during_job", "P2P p99 while a job runs", "≤ 2 × p99 without a job"),
]


def bulk_figure(x):
    f = x.get("figures") or {}
    part = x.get("part")
    if x.get("error"):
        return "FAILED: " + x["error"][:120].replace("|", "/").replace("\n", " ")
    if part == "ingest":
        return (f"{num(f.get('to_awaiting_approval_s'), 2)} s ({num(f.get('rows_per_s'))} rows/s), "
                f"peak VmHWM {num(f.get('vm_hwm_mb'))} MB")
    if part == "processing":
        return f"{num(f.get('items_per_s'))} items/s ({num(f.get('items'))} items)"
    if part == "efficiency":
        return f"{num(f.get('efficiency'), 3)} ({num(f.get('items_per_s'))} of {num(f.get('ideal_items_per_s'))} items/s)"
    if part == "p2p_during_job":
        during, alone = f.get("during_job") or {}, f.get("without_job") or {}
        return (f"p99 {num(during.get('p99_ms'), 2)} ms during vs {num(alone.get('p99_ms'), 2)} ms without "
                f"(× {num(f.get('p99_ratio'), 2)})")
    return ""


def verdict_of(bench_verdict):
    return {"PASS": MEETS, "PASS (floor)": FLOOR, "BELOW": MISSES}.get(bench_verdict, NO_FIGURES)


def render_bulk(r, s):
    out = header("Bulk disbursements", "cargo bench --bench bulk", r,
                 " (`SYSGP_BENCH_ONLY=ingest,processing,efficiency,p2p_during_job` a subset)")
    rows = (r or {}).get("rows", [])
    if r:
        out[-2] += f" Parts: {', '.join(r.get('only') or ['all'])}{' (quick)' if r.get('quick') else ''}."
        out += table(["part", "measured", "goal", "bench's verdict"],
                     [[x.get("name"), bulk_figure(x), x.get("goal") or "", x.get("verdict") or ""] for x in rows])
    for name, part, what, goal in BULK_PARTS:
        match = [x for x in rows if x.get("part") == part and (part != "ingest" or x.get("name") == name)]
        if not match:
            s.add(what, goal, "not in the latest run", NO_FIGURES, None)
            continue
        x = match[-1]
        s.add(what, goal, bulk_figure(x), verdict_of(x.get("verdict")), r.get("date"))
    return out


def render_soak(r, s):
    out = header("Soak", "cargo bench --bench soak", r, " (`-- --secs 600` for ten minutes)")
    rss_goal, p99_goal = "last window's RSS ≤ 1.25 × window 2's", "last window's p99 ≤ 2 × window 2's"
    if not r:
        s.add("soak memory", rss_goal, "–", NO_FIGURES, None)
        s.add("soak latency", p99_goal, "–", NO_FIGURES, None)
        return out
    t, rule, bulk = r.get("totals", {}), r.get("rule", {}), r.get("bulk", {})
    out += [f"{num(r.get('duration_s'))} s at {num(r.get('rate_per_s'))} operations/s (open loop), "
            f"{r.get('windows_count')} windows of {r.get('window_s')} s; {num(t.get('throughput_per_s'), 1)} ok/s, "
            f"p50 {num(t.get('p50_ms'), 2)} ms, p99 {num(t.get('p99_ms'), 2)} ms, errors {t.get('errors')}, "
            f"refusals {t.get('refused')}; data directory +{num(t.get('data_dir_growth_mb'), 1)} MB "
            f"({num(t.get('data_dir_growth_bytes_per_op'))} bytes per operation); bulk: {bulk.get('jobs', '–')} jobs "
            f"of {bulk.get('items_per_job', '–')} items, {bulk.get('items_failed', '–')} failed. "
            f"Run {'passed' if r.get('passed') else 'FAILED: ' + '; '.join(r.get('reasons', []))}.", ""]
    out += table(["window", "seconds", "ok/s", "errors", "p50 ms", "p99 ms", "RSS MB (peak)", "data MB", "bulk items"],
                 [[w.get("window"), f"{w.get('from_s')}–{w.get('to_s')}", num(w.get("throughput_per_s")),
                   w.get("errors"), num(w.get("p50_ms"), 2), num(w.get("p99_ms"), 2), num(w.get("rss_peak_mb"), 1),
                   num(w.get("data_dir_mb"), 1), w.get("bulk_items")] for w in r.get("windows", [])])
    for key, goal, limit, label in [("rss_ratio", rss_goal, rule.get("rss_ratio_max", 1.25), "soak memory"),
                                    ("p99_ratio", p99_goal, rule.get("p99_ratio_max", 2.0), "soak latency")]:
        ratio = rule.get(key)
        verdict = NO_FIGURES if ratio is None else (MEETS if ratio <= limit else MISSES)
        s.add(f"{label} ({num(r.get('duration_s'))} s)", goal, f"× {num(ratio, 2)}", verdict, r.get("date"))
    errors = t.get("errors")
    s.add("soak errors", "0", str(errors), MEETS if errors == 0 else MISSES, r.get("date"))
    return out


def render_faults(r, s):
    out = header("SDK fault campaign", "cargo test --release --test api faults", r,
                 " (`SYSGP_FAULT_ROUNDS=N` for N rounds)")
    modes = (r or {}).get("modes", {})
    if modes:
        def ended(m, prefix):
            return sum(n for k, n in (m.get("outcomes") or {}).items() if k.startswith(prefix))

        out += table(["mode", "date", "rounds", "transfers", "faults injected", "COMPLETED", "FAILED at once",
                      "IN_DOUBT settled by reconciliation", "IN_DOUBT resolved by an operator", "seconds", "build"],
                     [[name, (m.get("date") or "")[:16], m.get("rounds"), m.get("transfers"),
                       m.get("faults_injected"), ended(m, "COMPLETED"), ended(m, "FAILED"),
                       m.get("in_doubt_settled_by_reconciliation"), m.get("in_doubt_resolved_by_an_operator"),
                       m.get("seconds"), m.get("profile")] for name, m in sorted(modes.items())])
        kinds = {}
        for m in modes.values():
            for k, n in (m.get("faults_by_kind") or {}).items():
                kinds[k] = kinds.get(k, 0) + n
        out += ["Faults injected by kind, all modes: "
                + ", ".join(f"{k} × {n}" for k, n in sorted(kinds.items())) + ".", ""]
    for mode in FAULT_MODES:
        m = modes.get(mode)
        latest = f"{m.get('faults_injected')} faults, {m.get('transfers')} transfers" if m else "not run"
        s.add(f"SDK faults, mode {mode}", "every fault ends as the outcome table says", latest,
              MEETS if m else NO_FIGURES, (m or {}).get("date"))
    return out


def render_crash(r, s):
    out = header("Crash campaign", "cargo test --release --test campaign", r,
                 " (`SYSGP_CRASH_CYCLES=N` cycles per mode, `SYSGP_CRASH_SEED` to repeat)")
    modes = (r or {}).get("modes") or {k: v for k, v in (r or {}).items() if isinstance(v, dict) and k != "machine"}
    if r is not None and not r.get("date"):
        dates = sorted(m.get("date", "") for m in modes.values())
        out[-2] = f"Latest run: {dates[-1] if dates else 'date not recorded'}, {machine_line(r)}."
    if modes:
        out += table(["mode", "date", "cycles", "kills (mid-job)", "acknowledged transfers", "bulk items",
                      "IN_DOUBT after restarts", "resolved by an operator", "seconds", "seed"],
                     [[name, (m.get("date") or "")[:16], m.get("cycles_survived", m.get("cycles")),
                       f"{m.get('kills')} ({m.get('kills_mid_job', '–')})", m.get("acknowledged_transfers"),
                       m.get("bulk_items"), m.get("in_doubt_after_restarts", "–"),
                       m.get("in_doubt_resolved_by_operator", "–"), m.get("duration_secs", m.get("duration")),
                       m.get("seed")] for name, m in sorted(modes.items())])
    for mode in CRASH_MODES:
        m = modes.get(mode)
        cycles = (m or {}).get("cycles_survived", (m or {}).get("cycles"))
        verdict = NO_FIGURES if cycles is None else (MEETS if cycles >= CRASH_CYCLES_GOAL else MISSES)
        s.add(f"crash campaign, mode {mode}", f"≥ {CRASH_CYCLES_GOAL} kill -9 cycles",
              f"{cycles} cycles" if cycles is not None else "not run", verdict, (m or {}).get("date"))
    return out


def render_model(r, s):
    out = header("Model-based test", "SYSGP_MODEL_CASES=10000 TMPDIR=/dev/shm cargo test --release --test model", r,
                 " (plain `cargo test --test model`: the CI size, 256 sequences)")
    n = (r or {}).get("sequences")
    if r:
        out += [f"{num(n)} sequences ({num(r.get('sequences_asked'))} asked) of up to {r.get('ops_max')} operations, "
                f"{num(r.get('operations'))} operations in {num(r.get('seconds'), 1)} s, {r.get('profile')} build, "
                f"{'passed' if r.get('passed') else 'FAILED'}."
                + (f" Outcomes never reached: {', '.join(r['outcomes_never_reached'])}."
                   if r.get("outcomes_never_reached") else ""), ""]
    for goal, label in [(MODEL_LONG_RUN_GOAL, "long run"), (MODEL_CI_GOAL, "CI run")]:
        verdict = NO_FIGURES if n is None else (MEETS if n >= goal and r.get("passed") else MISSES)
        s.add(f"model test, {label}", f"≥ {num(goal)} sequences", f"{num(n)} sequences" if r else "–", verdict,
              (r or {}).get("date"))
    return out


def render_fuzz(r, s):
    out = header("Fuzzing", "fuzz/run", r, " (`FUZZ_SECS=N` per target; needs cargo-fuzz)")
    targets = (r or {}).get("targets", [])
    if r:
        out += table(["target", "executions", "seconds", "result"],
                     [[t.get("target"), num(t.get("executions")), t.get("seconds"),
                       "no failure" if t.get("passed") else "FAILED"] for t in targets])
    secs = (r or {}).get("seconds_per_target")
    ok = r is not None and r.get("passed") and secs is not None and secs >= FUZZ_SECONDS_GOAL
    s.add("fuzzing", f"~{FUZZ_SECONDS_GOAL} s per target, no failure",
          f"{len(targets)} targets × {secs} s" if r else "–", NO_FIGURES if r is None else (MEETS if ok else MISSES),
          (r or {}).get("date"))
    return out


def kept_notes(path):
    try:
        text = path.read_text()
    except OSError:
        return ""
    if NOTES_BEGIN in text and NOTES_END in text:
        return text.split(NOTES_BEGIN, 1)[1].split(NOTES_END, 1)[0].strip("\n")
    return ""


def render(bench_dir, out_path):
    s = Summary()
    sections = [
        render_p2p(load(bench_dir, "p2p"), s),
        render_bulk(load(bench_dir, "bulk"), s),
        render_soak(load(bench_dir, "soak"), s),
        render_faults(load(bench_dir, "faults"), s),
        render_crash(load(bench_dir, "crash"), s),
        render_model(load(bench_dir, "model"), s),
        render_fuzz(load(bench_dir, "fuzz"), s),
    ]
    lines = [
        "# Benchmarks",
        "",
        "Rendered by `scripts/benchmarks --render` from `target/bench/*.json`; `scripts/benchmarks` runs every",
        "benchmark and campaign first (tens of minutes on two cores). Benchmarks use the release build with the",
        "server and the SDK simulator as separate processes from the load generator, on a fresh data directory,",
        "every transfer durable before its reply. Each figure is the latest run's, with its date and machine;",
        f"\"{MEETS}\" / \"{FLOOR}\" / \"{MISSES}\" compare it with its goal; \"{NO_FIGURES}\": the latest report lacks",
        "that part (never run, or the last run was a subset). The machine may be shared: compare ratios measured",
        "in one run.",
        "",
        "## Goals",
        "",
    ]
    lines += table(["what", "goal", "latest", "verdict", "date"], s.rows)
    for section in sections:
        lines += section
    notes = kept_notes(out_path)
    lines += ["## Notes", "", NOTES_BEGIN] + ([notes] if notes else []) + [NOTES_END, ""]
    out_path.write_text("\n".join(lines))
    return s.missing()


def main():
    default_target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not default_target.is_absolute():
        default_target = ROOT / default_target
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-dir", type=Path, default=default_target / "bench")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    missing = render(args.bench_dir, args.out)
    print(f"wrote {args.out} from {args.bench_dir}")
    for what, goal, latest, verdict, _ in missing:
        print(f"  {'missed' if verdict == MISSES else 'no figures'}: {what}: {latest} (goal {goal})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
