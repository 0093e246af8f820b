"""The scaling curve's table (scripts/scaling-curve): one column per size.

    python3 scaling_table.py DIR SIZE [SIZE...]

Reads DIR/SIZE/report.json (the `inproc` suite's rows) and DIR/SIZE/import.json (the
import's own process), prints Markdown: the import, then every inproc figure, then the
checks of issue 12 item 6. Exits 1 when a file is missing or unreadable, naming it.
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"scaling_table: {path}: {e}")


def fmt(v):
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def main():
    out, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
    if not sizes:
        sys.exit("scaling_table: usage: scaling_table.py DIR SIZE [SIZE...]")
    rows, units, order = {}, {}, []
    for n in sizes:
        imp = load(f"{out}/{n}/import.json")
        for name, value, unit in [
            ("import (own process), wall time", imp["seconds"], "s"),
            ("import (own process), records/s", n / imp["seconds"], "records/s"),
            ("import (own process), peak RSS", imp["peak_rss_kb"] / 1e3, "MB"),
        ]:
            rows.setdefault(name, {})[n] = value
            units[name] = unit
            if name not in order:
                order.append(name)
        for r in load(f"{out}/{n}/report.json"):
            name = r["name"]
            rows.setdefault(name, {})[n] = r["value"]
            units[name] = r["unit"]
            if name not in order:
                order.append(name)
    print("| figure | unit | " + " | ".join(f"{n:,}" for n in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for name in order:
        cells = " | ".join(fmt(rows[name].get(n)) for n in sizes)
        print(f"| {name} | {units[name]} | {cells} |")

    checks = []
    base, last = (sizes[1], sizes[-1]) if len(sizes) > 2 else (sizes[0], sizes[-1])
    for name in order:
        unit = units[name]
        lowered = name.lower()
        latency = unit in ("µs", "us") and ("lookup" in lowered or "enrich" in lowered)
        if latency and base in rows[name] and last in rows[name] and rows[name][base] > 0:
            ratio = rows[name][last] / rows[name][base]
            checks.append((f"{name}: {last:,} / {base:,} within ±20 %", f"{ratio:.2f}×", 0.8 <= ratio <= 1.2))
    for name in order:
        if name.startswith("RSS serving") and last in rows[name]:
            value = rows[name][last]
            checks.append((f"{name} at {last:,} ≤ 250 MB", f"{value:.1f} MB", value <= 250))
    name = "import (own process), wall time"
    per_record = {n: rows[name][n] / n for n in sizes if n in rows[name]}
    for n in sizes[1:]:
        ratio = per_record[n] / per_record[sizes[0]]
        checks.append((f"import time per record at {n:,} / at {sizes[0]:,} within ±20 % (linear)", f"{ratio:.2f}×", 0.8 <= ratio <= 1.2))
    print()
    print("| check | measured | met |")
    print("|---|---|---|")
    for what, measured, met in checks:
        print(f"| {what} | {measured} | {'yes' if met else 'NO'} |")


main()
