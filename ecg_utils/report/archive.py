"""The report's section on whole archives, from ``results/bench_archive.json``."""

from __future__ import annotations


def section_archive_speed(results: dict) -> str | None:
    """Folder runs, long records and the LocalCluster (``bench/archive.py``).

    Returns None (no section, not even a blank line) when the results file is absent,
    so the committed report stays current until the benchmark has been run.
    """
    b = results.get("bench_archive")
    heading = "## Whole archives (`bench/archive.py`)\n\n"
    if not b:
        return None
    goals = b.get("goals", {})
    rows = []
    a, long_, c = b.get("mitdb"), b.get("long"), b.get("cluster")
    if a:
        goal = f"≤ {goals['mitdb_wall_s']:.0f} s" if a["n_recordings"] == 48 else ""
        rows.append((f"{a['n_recordings']} MIT-BIH records, wall", f"{a['wall_s']:.1f} s", goal))
        rows.append(("  recordings per minute", f"{a['recordings_per_min']:.1f}", ""))
        rows.append(("  beats per second", f"{a['beats_per_s']:,.0f}", ""))
    if long_:
        full = long_["n_recordings"] == 20 and long_["hours"] >= 24
        what = (
            f"{long_['n_recordings']} records of {long_['hours']:g} h ({long_['n_beats']:,} beats)"
        )
        goal = f"≤ {goals['long_wall_s']:.0f} s" if full else ""
        rows.append((f"{what}, wall", f"{long_['wall_s']:.1f} s", goal))
        goal = f"≤ {goals['long_peak_rss_mb'] / 1024:.1f} GB" if full else ""
        rows.append(
            ("  peak memory per worker (max)", f"{long_['peak_rss_mb_max'] / 1024:.2f} GB", goal)
        )
        rows.append(("  beats per second", f"{long_['beats_per_s']:,.0f}", ""))
    if c:
        rows.append(("LocalCluster, the same MIT-BIH records, wall", f"{c['wall_s']:.1f} s", ""))
        same = "yes" if c["identical"] else "**no**"
        rows.append(("  tables byte-identical to the process pool's", same, "yes"))
    table = "\n".join(f"| {x} | {y} | {z} |" for x, y, z in rows)
    load = b.get("load_before", [None])[0]
    load_text = f" Load average before the run: {load:.2f}." if load is not None else ""
    workers = b.get("workers", "?")
    cores = b.get("environment", {}).get("cpu_count", "?")
    return (
        f"{heading}`predict` over folders with {workers} worker processes on this machine "
        f"({cores} cores); wall time of the whole command, Python start-up included."
        f"{load_text}\n\n| what | measured | goal |\n|---|---:|---:|\n{table}\n"
    )


def readme_archive_line(results: dict) -> list[str]:
    """The README's line on whole archives: headline figures beside their goals."""
    b = results.get("bench_archive")
    a, long_, c = (b or {}).get("mitdb"), (b or {}).get("long"), (b or {}).get("cluster")
    if not (a and long_):
        return []
    goals = b["goals"]
    cluster = ""
    if c:
        same = "byte-identical" if c["identical"] else "NOT identical"
        cluster = f"; a Dask LocalCluster {c['wall_s']:.0f} s, tables {same} to the pool's"
    return [
        "",
        f"Whole archives (`bench/archive.py`, {b.get('workers', '?')} worker processes): "
        f"{a['n_recordings']} MIT-BIH records in {a['wall_s']:.1f} s (goal ≤ "
        f"{goals['mitdb_wall_s']:.0f} s); {long_['n_recordings']} records of "
        f"{long_['hours']:g} h in {long_['wall_s']:.0f} s and "
        f"{long_['peak_rss_mb_max'] / 1024:.2f} GB per worker (goals ≤ "
        f"{goals['long_wall_s']:.0f} s, ≤ {goals['long_peak_rss_mb'] / 1024:.1f} GB){cluster}.",
    ]
