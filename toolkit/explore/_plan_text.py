"""Rendering an ``EXPLAIN (FORMAT JSON)`` document in psql's text layout.

The plan is fetched once, as JSON (a second ``EXPLAIN (FORMAT TEXT)`` would run an
analyzed statement twice); this module mirrors PostgreSQL's ``explain.c`` to print it the
way psql would: node titles, cost and actual-time measures, and the detail lines under
each node.

Why one module: it has one job, and it follows ``explain.c`` section by
section, so one file reads side by side with PostgreSQL's. Citus's remote plans stay here
too: a Citus scan's details hold whole plans (a task's, a subplan's), drawn by the same
node renderer that drew the scan, so the two halves of a split would import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolkit.sql import quote_like_postgres

_NOT_IN_TEXT = frozenset(
    {
        "Node Type", "Strategy", "Partial Mode", "Operation", "Parent Relationship",
        "Subplan Name", "Custom Plan Provider", "Parallel Aware", "Async Capable",
        "Join Type", "Command", "Scan Direction", "Index Name", "Relation Name", "Schema",
        "Alias", "Function Name", "Table Function Name", "CTE Name", "Tuplestore Name",
        "Startup Cost", "Total Cost", "Plan Rows", "Plan Width", "Actual Startup Time",
        "Actual Total Time", "Actual Rows", "Actual Loops", "Plans", "Inner Unique",
    }
)  # fmt: skip
"""Node keys the text format shows in the node's title line, or not at all."""

_ONLY_WHEN_SET = frozenset(
    {
        "Disabled", "Single Copy", "Rows Removed by Filter", "Rows Removed by Join Filter",
        "Rows Removed by Index Recheck", "Subplans Removed",
    }
)  # fmt: skip
"""Keys the text format shows only when true or non-zero."""

_AGGREGATES = {"Plain": "Aggregate", "Sorted": "GroupAggregate", "Hashed": "HashAggregate"}
_AGGREGATES["Mixed"] = "MixedAggregate"

_TARGETS = (
    "Relation Name",
    "Function Name",
    "Table Function Name",
    "CTE Name",
    "Tuplestore Name",
)

_BUFFER_KEYS = tuple(
    f"{area} {kind} Blocks"
    for area, kinds in (
        ("Shared", ("Hit", "Read", "Dirtied", "Written")),
        ("Local", ("Hit", "Read", "Dirtied", "Written")),
        ("Temp", ("Read", "Written")),
    )
    for kind in kinds
)
_IO_KEYS = (
    *(
        f"{area} I/O {kind} Time"
        for area in ("Shared", "Local", "Temp")
        for kind in ("Read", "Write")
    ),
    "I/O Read Time",
    "I/O Write Time",  # before PostgreSQL 15
)


def render_plan(document: Mapping[str, Any], rows_decimals: int = 2) -> str:
    """An ``EXPLAIN (FORMAT JSON)`` document (one element) in psql's text layout.

    Numbers are printed with the server's precision (costs 2 decimals, times 3); actual
    rows have ``rows_decimals`` (2 from PostgreSQL 18, 0 before).
    """
    lines: list[str] = []
    _render_node(document["Plan"], 0, lines, rows_decimals)
    return "\n".join(lines + _document_lines(document))


def _document_lines(document: Mapping[str, Any]) -> list[str]:
    """The lines after the plan tree: planning buffers, triggers, JIT, times."""
    lines: list[str] = []
    for key, value in document.items():
        if key == "Plan":
            continue
        if key == "Planning":
            details = _buffer_lines(value)
            if details:
                lines.append("Planning:")
                lines += ["  " + line for line in details]
        elif key == "Triggers":
            lines += [_trigger_line(trigger) for trigger in value]
        elif key == "JIT":
            lines += ["JIT:", *("  " + line for line in _jit_lines(value))]
        elif key in ("Planning Time", "Execution Time"):
            lines.append(f"{key}: {value:.3f} ms")
        elif not isinstance(value, dict | list):
            lines.append(f"{key}: {_text(value)}")
    return lines


def _render_node(
    node: Mapping[str, Any], indent: int, lines: list[str], rows_decimals: int
) -> None:
    """Mirrors ``ExplainNode`` in PostgreSQL's explain.c, for the text format."""
    subplan = node.get("Subplan Name")
    if subplan:
        lines.append("  " * indent + subplan)
        indent += 1
    prefix = ""
    if indent:
        prefix = "  " * indent + "->  "
        indent += 2
    lines.append(prefix + _title(node) + _measures(node, rows_decimals))
    indent += 1
    lines += ["  " * indent + line for line in _details(node, rows_decimals)]
    for child in node.get("Plans", []):
        _render_node(child, indent, lines, rows_decimals)


def _details(node: Mapping[str, Any], rows_decimals: int = 2) -> list[str]:
    """The lines under a node's title, in the order PostgreSQL prints them (the JSON's)."""
    lines: list[str] = []
    done: set[str] = set()
    for key, value in node.items():
        if key in done or key in _NOT_IN_TEXT:
            continue
        if key in _ONLY_WHEN_SET:
            if value:
                lines.append(f"{key}: {_text(value)}")
            continue
        group = _group(node, key)
        if group is not None:
            keys, rendered = group
            done.update(keys)
            lines += rendered
        elif key == "Workers" and isinstance(value, list):
            lines += _worker_lines(node["Node Type"], value)
        elif key == "Distributed Query" and isinstance(value, dict):
            lines += _distributed_lines(value, rows_decimals)
        elif key == "Select Query":  # Citus INSERT ... SELECT: the SELECT's own plan
            for document in _documents(value):
                lines += _child_lines(document, rows_decimals, 0)
        elif not isinstance(value, dict) and not (isinstance(value, list) and _nested(value)):
            lines.append(f"{key}: {_text(value)}")
        # other nested structures (grouping sets, incremental sort groups) are left out
    return lines


def _distributed_lines(query: Mapping[str, Any], rows_decimals: int) -> list[str]:
    """A Citus custom scan's distributed query as Citus prints it: each subplan run
    first (its result shipped to the nodes), then the job - task count, the tasks shown
    (one of many, unless ``citus.explain_all_tasks``) with the plan each ran on its
    node, and the jobs a repartition join depends on."""
    lines: list[str] = []
    for number, subplan in enumerate(query.get("Subplans") or [], 1):
        lines.append(f"->  Distributed Subplan {number}")
        lines += _item_lines(subplan, rows_decimals)
    job = query.get("Job")
    if isinstance(job, dict):
        lines += _job_lines(job, rows_decimals)
    return lines


def _job_lines(job: Mapping[str, Any], rows_decimals: int) -> list[str]:
    lines: list[str] = []
    for key, value in job.items():
        if key == "Tasks" and isinstance(value, list):
            for task in value:
                lines.append("->  Task")
                lines += _item_lines(task, rows_decimals)
        elif key == "Dependent Jobs" and isinstance(value, list):
            for dependent in value:
                lines.append("->  MapMergeJob")
                lines += ["      " + line for line in _job_lines(dependent, rows_decimals)]
        elif not isinstance(value, dict | list):
            lines.append(f"{key}: {_text(value)}")
    return lines


def _item_lines(item: Mapping[str, Any], rows_decimals: int) -> list[str]:
    """The lines under ``->  Task`` (or a subplan): its fields, then the plan it ran,
    drawn as a child of the item."""
    lines: list[str] = []
    for key, value in item.items():
        if key in ("Remote Plan", "PlannedStmt"):
            # Citus puts a task's own times under its plan's title, a subplan's beside it.
            times_indent = 4 if key == "Remote Plan" else 0
            for document in _documents(value):
                child = _child_lines(document, rows_decimals, times_indent)
                lines += ["      " + line for line in child]
        elif key == "Subplan Duration":
            lines.append(f"      {key}: {value:.2f} ms")
        elif not isinstance(value, dict | list):
            lines.append(f"      {key}: {_text(value)}")
    return lines


def _child_lines(document: Mapping[str, Any], rows_decimals: int, times_indent: int) -> list[str]:
    """An EXPLAIN document drawn as a child (``->  Node``) at the detail column."""
    lines: list[str] = []
    _render_node(document["Plan"], 1, lines, rows_decimals)
    lines = [line[2:] for line in lines]
    return lines + [" " * times_indent + line for line in _document_lines(document)]


def remote_plans(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The root nodes of the plans a Citus custom scan shows: its subplans', the tasks'
    (as run on a worker) and an INSERT ... SELECT's SELECT."""
    query = node.get("Distributed Query") or {}
    found = [d for sub in query.get("Subplans") or [] for d in _documents(sub.get("PlannedStmt"))]
    job = query.get("Job") or {}
    found += [d for task in job.get("Tasks") or [] for d in _documents(task.get("Remote Plan"))]
    found += _documents(node.get("Select Query"))
    return [document["Plan"] for document in found]


def _documents(value: Any) -> list[Mapping[str, Any]]:
    """The EXPLAIN documents in a Citus ``Remote Plan`` (a list of lists of them)."""
    if isinstance(value, dict):
        return [value] if "Plan" in value else []
    if isinstance(value, list):
        return [document for item in value for document in _documents(item)]
    return []


def _worker_lines(kind: str, workers: list[Any]) -> list[str]:
    """``Worker 0:  Sort Method: quicksort  Memory: 25kB`` for each parallel worker."""
    lines = []
    for worker in workers:
        if not isinstance(worker, dict):
            continue
        details = {k: v for k, v in worker.items() if k != "Worker Number"}
        rendered = _details({"Node Type": kind, **details}, 0)
        if rendered:
            lines.append(f"Worker {worker.get('Worker Number')}:  {rendered[0]}")
            lines += ["  " + line for line in rendered[1:]]
    return lines


def _title(node: Mapping[str, Any]) -> str:
    kind: str = node["Node Type"]
    title = ""
    if node.get("Parallel Aware"):
        title += "Parallel "
    if node.get("Async Capable"):
        title += "Async "
    if kind == "ModifyTable":
        name = node.get("Operation", kind)
    elif kind in ("Merge Join", "Hash Join"):
        name = kind.split()[0]  # the join type adds "... Join"
    elif kind == "Foreign Scan" and node.get("Operation", "Select") != "Select":
        name = f"Foreign {node['Operation']}"
    elif kind == "Custom Scan" and node.get("Custom Plan Provider"):
        name = f"Custom Scan ({node['Custom Plan Provider']})"
    elif kind == "Aggregate":
        name = _AGGREGATES.get(node.get("Strategy", "Plain"), kind)
        if node.get("Partial Mode") in ("Partial", "Finalize"):
            name = f"{node['Partial Mode']} {name}"
    elif kind == "SetOp":
        name = "HashSetOp" if node.get("Strategy") == "Hashed" else "SetOp"
    else:
        name = kind
    title += str(name)
    if kind in ("Index Scan", "Index Only Scan"):
        if node.get("Scan Direction") == "Backward":
            title += " Backward"
        title += f" using {quote_like_postgres(node['Index Name'])}"
    if kind == "Bitmap Index Scan":
        title += f" on {quote_like_postgres(node['Index Name'])}"
    elif "Alias" in node:
        target = next((node[k] for k in _TARGETS if k in node), None)
        title += " on"
        if target is not None:
            schema = node.get("Schema")
            quoted = quote_like_postgres(target)
            title += f" {quote_like_postgres(schema)}.{quoted}" if schema else f" {quoted}"
        if target is None or node["Alias"] != target:
            title += f" {quote_like_postgres(node['Alias'])}"
    if kind in ("Nested Loop", "Merge Join", "Hash Join"):
        join = node.get("Join Type", "Inner")
        if join != "Inner":
            title += f" {join} Join"
        elif kind != "Nested Loop":
            title += " Join"
    if kind == "SetOp" and "Command" in node:
        title += f" {node['Command']}"
    return title


def _nested(values: list[Any]) -> bool:
    return bool(values) and isinstance(values[0], dict)


def _measures(node: Mapping[str, Any], rows_decimals: int) -> str:
    """``  (cost=0.00..35.50 rows=2550 width=4) (actual time=... rows=... loops=1)``."""
    out = ""
    if "Total Cost" in node:
        out += (
            f"  (cost={node['Startup Cost']:.2f}..{node['Total Cost']:.2f} "
            f"rows={node['Plan Rows']:.0f} width={node['Plan Width']})"
        )
    if "Actual Loops" in node:
        if node["Actual Loops"]:
            out += " (actual "
            if "Actual Total Time" in node:
                start, total = node["Actual Startup Time"], node["Actual Total Time"]
                out += f"time={start:.3f}..{total:.3f} "
            out += f"rows={node['Actual Rows']:.{rows_decimals}f} loops={node['Actual Loops']:.0f})"
        else:
            out += " (never executed)"
    return out


def _group(node: Mapping[str, Any], key: str) -> tuple[tuple[str, ...], list[str]] | None:
    """Keys psql shows together on one line (buffers, sort, hash and cache details)."""
    keys: tuple[str, ...]
    if key in _BUFFER_KEYS or key in _IO_KEYS:
        return _BUFFER_KEYS + _IO_KEYS, _buffer_lines(node)
    kind = node["Node Type"]
    if key in ("Sort Method", "Sort Space Used", "Sort Space Type"):
        keys = ("Sort Method", "Sort Space Used", "Sort Space Type")
        line = f"Sort Method: {node.get('Sort Method')}"
        if "Sort Space Used" in node:
            line += f"  {node.get('Sort Space Type')}: {node['Sort Space Used']}kB"
        return keys, [line]
    if kind == "Hash" and key in _HASH_KEYS:
        return _HASH_KEYS, [_hash_line(node)]
    if kind == "Aggregate" and key in _HASHAGG_KEYS:
        return _HASHAGG_KEYS, _hashagg_lines(node)
    if kind == "Memoize" and key in _MEMOIZE_KEYS:
        return _MEMOIZE_KEYS, [_memoize_line(node)]
    if key in ("Storage", "Maximum Storage"):
        keys = ("Storage", "Maximum Storage")
        line = f"Storage: {node.get('Storage')}  Maximum Storage: {node.get('Maximum Storage')}kB"
        return keys, [line]
    if key in ("Exact Heap Blocks", "Lossy Heap Blocks"):
        keys = ("Exact Heap Blocks", "Lossy Heap Blocks")
        parts = [
            f"{label}={node[k]}"
            for label, k in (("exact", keys[0]), ("lossy", keys[1]))
            if node.get(k)
        ]
        return keys, [f"Heap Blocks: {' '.join(parts)}"] if parts else []
    return None


_HASH_KEYS = (
    "Hash Buckets",
    "Original Hash Buckets",
    "Hash Batches",
    "Original Hash Batches",
    "Peak Memory Usage",
)
_HASHAGG_KEYS = ("Planned Partitions", "HashAgg Batches", "Peak Memory Usage", "Disk Usage")
_MEMOIZE_KEYS = (
    "Cache Hits",
    "Cache Misses",
    "Cache Evictions",
    "Cache Overflows",
    "Peak Memory Usage",
)


def _hash_line(node: Mapping[str, Any]) -> str:
    buckets, batches = node.get("Hash Buckets"), node.get("Hash Batches")
    before = node.get("Original Hash Buckets"), node.get("Original Hash Batches")
    memory = f"Memory Usage: {node.get('Peak Memory Usage')}kB"
    if before != (buckets, batches):
        return (
            f"Buckets: {buckets} (originally {before[0]})  "
            f"Batches: {batches} (originally {before[1]})  {memory}"
        )
    return f"Buckets: {buckets}  Batches: {batches}  {memory}"


def _hashagg_lines(node: Mapping[str, Any]) -> list[str]:
    parts = []
    if node.get("Planned Partitions"):
        parts.append(f"Planned Partitions: {node['Planned Partitions']}")
    if "HashAgg Batches" in node:
        batches = node["HashAgg Batches"]
        used = f"Batches: {batches}  Memory Usage: {node.get('Peak Memory Usage')}kB"
        if batches > 1:
            used += f"  Disk Usage: {node.get('Disk Usage')}kB"
        parts.append(used)
    return ["  ".join(parts)] if parts else []


def _memoize_line(node: Mapping[str, Any]) -> str:
    return (
        f"Hits: {node.get('Cache Hits')}  Misses: {node.get('Cache Misses')}  "
        f"Evictions: {node.get('Cache Evictions')}  Overflows: {node.get('Cache Overflows')}  "
        f"Memory Usage: {node.get('Peak Memory Usage')}kB"
    )


def _buffer_lines(values: Mapping[str, Any]) -> list[str]:
    """``Buffers: shared hit=3 read=1, temp written=5`` - non-zero counters only."""
    areas = []
    for area, kinds in (
        ("shared", ("Hit", "Read", "Dirtied", "Written")),
        ("local", ("Hit", "Read", "Dirtied", "Written")),
        ("temp", ("Read", "Written")),
    ):
        counts = [
            f"{kind.lower()}={values[key]}"
            for kind in kinds
            if values.get(key := f"{area.title()} {kind} Blocks")
        ]
        if counts:
            areas.append(f"{area} {' '.join(counts)}")
    lines = [f"Buffers: {', '.join(areas)}"] if areas else []
    timings = []
    for area in ("Shared", "Local", "Temp"):
        times = [
            f"{kind.lower()}={values[key]}"
            for kind in ("Read", "Write")
            if values.get(key := f"{area} I/O {kind} Time")
        ]
        if times:
            timings.append(f"{area.lower()} {' '.join(times)}")
    legacy = [
        f"{kind.lower()}={values[key]}"
        for kind in ("Read", "Write")
        if values.get(key := f"I/O {kind} Time")
    ]
    if legacy:
        timings.append(" ".join(legacy))
    if timings:
        lines.append(f"I/O Timings: {', '.join(timings)}")
    return lines


def _jit_lines(jit: Mapping[str, Any]) -> list[str]:
    lines = [f"Functions: {jit.get('Functions')}"]
    options = jit.get("Options") or {}
    if options:
        lines.append("Options: " + ", ".join(f"{k} {_text(v)}" for k, v in options.items()))
    timing = jit.get("Timing") or {}
    if timing:
        parts = []
        for step, value in timing.items():
            if isinstance(value, dict):  # PostgreSQL 17: Generation (Deform ...)
                inner = ", ".join(f"{k} {v:.3f} ms" for k, v in value.items() if k != "Total")
                parts.append(f"{step} {value.get('Total', 0):.3f} ms ({inner})")
            else:
                parts.append(f"{step} {value:.3f} ms")
        lines.append("Timing: " + ", ".join(parts))
    return lines


def _trigger_line(trigger: Mapping[str, Any]) -> str:
    constraint = trigger.get("Constraint Name")
    line = "Trigger" if constraint else f"Trigger {trigger.get('Trigger Name')}"
    if constraint:
        line += f" for constraint {constraint}"
    if "Time" in trigger:
        return f"{line}: time={trigger['Time']:.3f} calls={_text(trigger.get('Calls'))}"
    return f"{line}: calls={_text(trigger.get('Calls'))}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # counts: JSON may write 3.0 where the text has 3
    return str(value)
