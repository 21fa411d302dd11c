"""bench/REPORT.md and its plots, from one run's results (bench/results.json)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from statistics import median
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TARGETS = {"chatkeep": "chatkeep", "bare": "bare ASGI + asyncpg", "pgbench": "pgbench (PostgreSQL)"}
PACKAGES = ["litestar", "uvicorn", "uvloop", "httptools", "asyncpg", "msgspec"]


def _first_line(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False).stdout.split(
            "\n"
        )[0]
    except OSError:
        return "not found"


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{memory_kib / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": _first_line(["pgbench", "--version"]).replace("pgbench", "").strip(),
        "wrk": _first_line(["wrk", "--version"]) or "wrk (Debian)",
        "packages": ", ".join(f"{name} {version(name)}" for name in PACKAGES),
    }


def _median(runs: list[dict[str, float]], key: str) -> float:
    return median(run[key] for run in runs)


def _cell(runs: list[dict[str, float]] | None) -> list[str]:
    if not runs:
        return ["-", "-", "-", "-"]
    return [
        f"{_median(runs, 'rate'):,.0f}",
        f"{_median(runs, 'p50_ms'):.2f}",
        f"{_median(runs, 'p99_ms'):.2f}",
        str(sum(int(run["errors"]) for run in runs)),
    ]


def _ratio(numerator: list[dict[str, float]], denominator: list[dict[str, float]] | None) -> str:
    if not denominator:
        return "-"
    return f"{_median(numerator, 'rate') / _median(denominator, 'rate'):.2f}x"


def _spread(runs: list[dict[str, float]]) -> str:
    rates = [run["rate"] for run in runs]
    if len(rates) < 2:
        return "-"
    return f"±{(max(rates) - min(rates)) / 2 / median(rates) * 100:.0f}%"


def table(run: dict[str, Any]) -> str:
    results = run["results"]
    header = (
        "| workload | chatkeep req/s | p50 ms | p99 ms | errors | spread | bare req/s | p50 ms "
        "| p99 ms | errors | pgbench tps | p50 ms | p99 ms | errors | ÷ pgbench | ÷ bare |\n"
        "|---|" + "---:|" * 15 + "\n"
    )
    rows = []
    for name in run["workloads"]:
        ours = results["chatkeep"][name]
        bare = results["bare"].get(name)
        floor = results["pgbench"].get(name)
        cells = [
            name,
            *_cell(ours),
            _spread(ours),
            *_cell(bare),
            *_cell(floor),
            _ratio(ours, floor),
            _ratio(ours, bare),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return header + "\n".join(rows) + "\n"


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_throughput(run: dict[str, Any], out: Path) -> None:
    names = [name for name in run["workloads"] if not name.startswith("d:")]
    figure, axes = plt.subplots(figsize=(10, 4.5))
    width = 0.27
    for index, (target, label) in enumerate(TARGETS.items()):
        rates = [_median(run["results"][target][name], "rate") for name in names]
        positions = [n + (index - 1) * width for n in range(len(names))]
        axes.bar(positions, rates, width, label=label)
    axes.set_xticks(range(len(names)), names, rotation=15, ha="right", fontsize=8)
    axes.set_yscale("log")
    axes.set_ylabel("requests (transactions) per second, log scale")
    axes.set_title("Throughput: chatkeep against its two floors")
    axes.legend()
    _save(figure, out / "throughput.png")


def _plot_growth(run: dict[str, Any], out: Path) -> None:
    sizes = run["shape"]["growth"]
    names = [name for name in run["workloads"] if name.startswith("d:")]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for index, (target, label) in enumerate(TARGETS.items()):
        for key, style in (("p50_ms", "-o"), ("p99_ms", "--x")):
            values = [_median(run["results"][target][name], key) for name in names]
            axes.plot(sizes, values, style, color=f"C{index}", label=f"{label} {key[:3]}")
    axes.set_xscale("log")
    axes.set_xlabel("messages in the conversation")
    axes.set_ylabel("latency of 'latest 50', ms (concurrency 1)")
    axes.set_ylim(bottom=0)
    axes.set_title("(d) Reading the latest 50 as history grows")
    axes.legend(fontsize=7)
    _save(figure, out / "growth.png")


def _plot_concurrency(run: dict[str, Any], out: Path) -> None:
    names = [name for name in run["workloads"] if name.startswith("a:")]
    levels = [int(name.rsplit("c", 1)[1]) for name in names]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for target, label in TARGETS.items():
        rates = [_median(run["results"][target][name], "rate") for name in names]
        p99 = [_median(run["results"][target][name], "p99_ms") for name in names]
        axes[0].plot(levels, rates, "-o", label=label)
        axes[1].plot(levels, p99, "-o", label=label)
    axes[0].set_title("(a) latest 50: throughput")
    axes[0].set_ylabel("requests per second")
    axes[1].set_title("(a) latest 50: p99 latency")
    axes[1].set_ylabel("ms")
    for axis in axes:
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent connections")
        axis.legend(fontsize=8)
    _save(figure, out / "concurrency.png")


def imports_section(out: Path) -> str:
    """The import/export figures of `python -m bench.imports`, when it has been run."""
    path = out / "import_results.json"
    if not path.exists():
        return ""
    result = json.loads(path.read_text())
    messages = result["messages"]

    def row(what: str, key: str) -> str:
        seconds = result[key]
        return f"| {what} | {seconds:.1f} s | {messages / seconds:,.0f} messages/s |"

    batched = "copy_batched_seconds" in result
    rows = "\n".join(
        (
            row("`chatkeep import sqlite` (read, clean, COPY, verify)", "import_seconds"),
            row("floor: PostgreSQL `COPY messages FROM` the same rows", "copy_seconds"),
            *(
                [row("floor: the same COPY in the import's batches", "copy_batched_seconds")]
                if batched
                else []
            ),
            row("the same import again (all present: verification only)", "rerun_seconds"),
            row(f"`chatkeep export` ({result['export_mib']:.0f} MiB of NDJSON)", "export_seconds"),
        )
    )

    return f"""## Import and export
Generated by `{result["command"]}` on the same machine: a SQLite store of
{result["sessions"]:,} sessions x {messages // result["sessions"]:,} messages (about 450 bytes of
content and a small metadata object each), imported into an empty database.

| what | time | rate |
|---|---|---|
{rows}

The import is {result["import_seconds"] / result["copy_seconds"]:.2f}x the raw COPY time{
        f" ({result['import_seconds'] / result['copy_batched_seconds']:.2f}x in the same batches)"
        if batched
        else ""
    }. Peak
RSS of the import process: {result["import_peak_rss_mib"]:.0f} MiB (it holds one batch of at
most 20,000 messages or 32 MiB of content, and reads the next one); of the import and export
processes together (the larger of the two): {result["export_peak_rss_mib"]:.0f} MiB, whatever
the data size.
{_copy_steps(result)}
Import summary: {result["summary"]}
"""


def _copy_steps(result: dict[str, Any]) -> str:
    """Where a COPY of messages spends its time: one piece of the schema's work taken away at
    each step (bench/imports.py COPY_STEPS), when the run measured it."""
    steps = result.get("copy_steps")
    if not steps:
        return ""
    rows = [f"| {steps[0]['what']} | {steps[0]['seconds']:.1f} s | |"]
    for before, step in pairwise(steps):
        saved = before["seconds"] - step["seconds"]
        rows.append(f"| {step['what']} | {step['seconds']:.1f} s | {saved:+.1f} s |")
    load = ", ".join(f"{value:.1f}" for value in result.get("load_average", []))
    return f"""
COPY of the same {result["messages"]:,} stored rows (binary, from a file) into messages, taking
away one piece of the schema's work at each step; the saving is that piece's cost (load average
at the end of the run: {load}):

| COPY into messages | time | saved by this step |
|---|---|---|
{chr(10).join(rows)}
"""


# The aim for a search of one user's own history.
SEARCH_AIM_MS = 20
SEARCH_HEADER = (
    "| query | pgbench p50 | p99 | in-process p50 | p99 | HTTP c1 p50 | p99 | req/s "
    "| HTTP c8 p50 | p99 | req/s | errors |\n|---|" + "---:|" * 11
)


def search_section(out: Path) -> str:
    """The search figures of `python -m bench.search`, when it has been run."""
    path = out / "search_results.json"
    if not path.exists():
        return ""
    result = json.loads(path.read_text())
    shape = result["shape"]

    def timing(cell: dict[str, float] | None) -> str:
        if not cell:
            return "- | -"
        return f"{cell['p50_ms']:.1f} | {cell['p99_ms']:.1f}"

    own = "\n".join(
        f"| {kind} | {timing(row.get('pgbench_c1'))} | {timing(row.get('in_process'))} | "
        f"{timing(row['http_c1'])} | {row['http_c1']['rate']:,.0f} | {timing(row['http_c8'])} | "
        f"{row['http_c8']['rate']:,.0f} | {row['http_c1']['errors'] + row['http_c8']['errors']} |"
        for kind, row in result["own"].items()
    )
    everything = "\n".join(
        f"| {kind} | {timing(row['http_c1'])} | {row['http_c1']['rate']:,.0f} |"
        for kind, row in result["everything"].items()
    )
    sizes = result["sizes"]
    worst = max(row["http_c1"]["p50_ms"] for row in result["own"].values())
    aim = "met" if worst < SEARCH_AIM_MS else "not met"
    return f"""## Search
Generated by `{result["command"]}`: {shape["users"]:,} users x {shape["conversations"]}
conversations x {shape["messages"]} messages = {shape["total"]:,} messages
(`bench/search_dataset.py`: English sentences from a vocabulary where a few words are
everywhere and most are rare, 6% with an order number, 4% with an error code, 4% Japanese, 2%
Chinese), loaded with COPY in {result["load_seconds"]:.0f} s into a fresh server (shared_buffers
1 GB). Each search is one user's own history
({shape["conversations"] * shape["messages"]:,} messages), a random user per
request, a page of {result["page"]}; milliseconds:

{SEARCH_HEADER}
{own}

- pgbench: the service's statement and transaction (plan for the values, then
  `search.messages`) with `-M prepared`, one client; the floor.
- in-process: `history.search.find` (validation, the statement, snippets) over one asyncpg
  connection, one search at a time: the floor plus the Python around it.
- HTTP: `chatkeep serve --workers {result["workers"]}` under wrk (`bench/wrk/search.lua`),
  authenticated with an API key passing `user_id`, {result["seconds"]:g} s each after a warm-up.
- An order number is a random `ORD-2024-nnnnn`: it usually is not in that user's history, which
  costs as much as finding it (every message of the user is looked at either way).

Aim, p50 under {SEARCH_AIM_MS} ms for a user's own history: {aim} (the slowest kind's p50 over
HTTP at c1: {worst:.1f} ms).

Searching everyone's {shape["total"]:,} messages (an API key without `user_id`), HTTP, c1:

| query | p50 | p99 | req/s |
|---|---:|---:|---:|
{everything}

What the search costs the database: migration `0010.search` on these {shape["total"]:,} messages
took {result["migration_seconds"]:.0f} s (the generated column rewrites the table, then the two
GIN indexes are built); the messages table is {sizes["messages_table"]}, the tsvector index
{sizes["search_vector_index"]} and the trigram index {sizes["trigram_index"]}. A single-message
insert (its own transaction, one statement) took {result["insert_us_before"]:.0f} µs before the
migration and {result["insert_us_after"]:.0f} µs after (median of 2,000): the tsvector and
the two GIN indexes are paid on every write.

The plan of one user's search for "invoice" (EXPLAIN ANALYZE, as the service plans it):

```
{result["plan"]}
```

Why the statement is planned for its values on every call (`plan_cache_mode =
force_custom_plan` in its transaction): with the values, PostgreSQL folds the scope to
`c.user_id = '...'` and walks that user's conversations and their messages by primary key; the
generic plan a prepared statement falls back to after five calls cannot know whose messages are
searched and scanned the GIN indexes once per conversation: about 335 ms instead of about 1.7 ms
per search in the first measurements. Planning costs about a millisecond; it is in the figures
above.

{result["machine_note"].capitalize()}: figures move with that load.
"""


def events_section(out: Path) -> str:
    """The live updates figures of `python -m bench.events`, with their plot, when it has been
    run."""
    path = out / "events_results.json"
    if not path.exists():
        return ""
    result = json.loads(path.read_text())
    delivery = result["delivery"]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    counts = [row["subscribers_per_worker"] for row in delivery]
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        axes.plot(counts, [row[key] for row in delivery], marker="o", label=label)
    axes.set_xscale("log")
    axes.set_xlabel("subscribers per worker (two workers)")
    axes.set_ylabel("ms from the append's 201 to the event")
    axes.set_title("Event delivery")
    axes.legend()
    _save(figure, out / "events.png")
    rows = "\n".join(
        f"| {row['subscribers_per_worker']:,} | {row['streams']:,} | {row['p50_ms']:.1f} | "
        f"{row['p99_ms']:.1f} | {row['max_ms']:.1f} | {row['read_by_client']['p99_ms']:.1f} | "
        f"{row['delivered']:,} of "
        f"{row['expected']:,} | {row['idle_rss_kib_per_subscriber']:.0f} KiB |"
        for row in delivery
    )
    groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in result["rate"]:
        groups.setdefault((row["coalesce_ms"], row["busy_coalesce_ms"]), []).append(row)
    rates = "\n".join(rate_row(group) for group in groups.values())
    loaded = next(row for row in result["rate"] if row["subscribers_per_worker"])
    statement = result["append_statement"]
    repeats = sum(1 for row in next(iter(groups.values())) if row["subscribers_per_worker"])
    per_conversation = loaded["subscribers_per_worker"] * result["workers"] // result["writers"]
    return f"""## Events
Generated by `{result["command"]}`: `chatkeep serve --workers {result["workers"]}`; the
subscribers are raw connections of a client process of their own (`bench/events.py`), all
following one conversation, to which one writer (in another process) appends
{delivery[0]["appends"]} single messages, {delivery[0]["appends_per_second"]:g} a second
(`CHATKEEP_EVENTS_COALESCE_MS` {delivery[0]["coalesce_ms"]}, which one event every
{1000 / delivery[0]["appends_per_second"]:.0f} ms never waits for).
Latency is from the moment the writer has read the append's 201 to the moment the event was at
each subscriber: its socket's kernel timestamp (both processes read the same clock; an event can
arrive before the 201, so p50 can be below 0). "read p99": the same, to when the one client
process read it among its thousands of sockets.

| per worker | streams | p50 ms | p99 ms | max ms | read p99 ms | delivered | idle memory each |
|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

![event delivery](events.png)

Appends while they fan out: {result["writers"]} concurrent writers, each appending single
messages to its own conversation for the whole run, without subscribers and then with
{loaded["subscribers_per_worker"]:,} per worker spread over those conversations
({per_conversation:,} streams each), {repeats} times each in turn (A B B A A B ...), under each
`CHATKEEP_EVENTS_COALESCE_MS` and `CHATKEEP_EVENTS_BUSY_COALESCE_MS` ("if busy": the interval
while the machine is short of CPU; "-": none longer). Medians of the runs: appends/s without
and with subscribers, and their ratio; events/s delivered to subscribers; p50 and p99 (ms) of the
delivery latency during the runs (from each append's 201 to its event at each subscriber);
CPU in cores with subscribers (both workers together; the subscribers' process), and how busy
the machine's cores were ("busy", without / with).

| coalesce | if busy | without | with | ratio | events/s | p50 | p99 | workers | client | busy |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rates}

What the event log costs one append's statement (its own transaction, median of 2,000; the
trigger writing the log rows and the NOTIFY): {statement["with_events_us"]:.0f} µs with it,
{statement["without_events_us"]:.0f} µs with it disabled.

"Per worker" counts subscribers per worker. Idle memory each: the workers' resident memory
with the streams open, less before, over the streams (uvicorn's, Litestar's and the hub's
share of each; the kernel's socket buffers are not in it).

{result["machine_note"]}.
"""


def rate_row(runs: list[dict[str, Any]]) -> str:
    """One coalescing setting's append rates without and with subscribers (medians of the
    runs), their ratio, and what the runs with subscribers delivered and cost."""
    without = [run for run in runs if not run["subscribers_per_worker"]]
    loaded = [run for run in runs if run["subscribers_per_worker"]]
    coalesce, busy = runs[0]["coalesce_ms"], runs[0]["busy_coalesce_ms"]
    rate_without = median(run["appends_per_second"] for run in without)
    rate_with = median(run["appends_per_second"] for run in loaded)
    latency = [run["delivery_under_load"] for run in loaded]
    return (
        f"| {coalesce} ms | {f'{busy} ms' if busy > coalesce else '-'} | {rate_without:,.0f} | "
        f"{rate_with:,.0f} | {rate_with / rate_without:.2f} | "
        f"{median(run['events_delivered'] / run['seconds'] for run in loaded):,.0f} | "
        f"{median(cell['p50_ms'] for cell in latency):.0f} | "
        f"{median(cell['p99_ms'] for cell in latency):.0f} | "
        f"{median(run['workers_cpu_share'] for run in loaded):.2f} | "
        f"{median(run['client_cpu_share'] for run in loaded):.2f} | "
        f"{median(run['machine_busy'] for run in without):.0%} / "
        f"{median(run['machine_busy'] for run in loaded):.0%} |"
    )


def spread(cell: dict[str, Any]) -> float:
    """Half the range of a measurement's repeated rates, as a share of their median's."""
    middle, rates = cell["median"]["rate"], cell["rates"]
    return (max(rates) - min(rates)) / 2 / middle if middle else 0


def rate_cells(cell: dict[str, Any]) -> str:
    """A measurement's median rate, its spread, p50 and p99: four cells of a table row."""
    middle = cell["median"]
    return (
        f"{middle['rate']:,.0f} | ±{spread(cell):.0%} | {middle['p50_ms']:.2f} | "
        f"{middle['p99_ms']:.2f}"
    )


def context_section(out: Path) -> str:
    """The context window figures of `python -m bench.context`, when it has been run."""
    path = out / "context_results.json"
    if not path.exists():
        return ""
    result = json.loads(path.read_text())
    labels = {"read": "latest 50 (`limit=50`)", "window": f"`max_tokens={result['max_tokens']}`"}

    rows = "\n".join(
        f"| {int(size):,} | {labels[mode]} | {rate_cells(result['http'][size][mode])} | "
        f"{rate_cells(result['sql'][size][mode])} | {plan['buffers']} | "
        f"{plan['message_rows_read']} |"
        for size in result["http"]
        for mode, plan in result["plans"][size].items()
    )
    load = ", ".join(f"{value:.1f}" for value in result["load_average"])
    header = (
        "| history | read | HTTP req/s | spread | p50 ms | p99 ms | SQL tx/s | spread | p50 ms "
        "| p99 ms | buffers | rows |"
    )
    return f"""## Context window
Generated by `{result["command"]}`: one conversation of each of
{", ".join(f"{size:,}" for size in result["sizes"])} messages (400 ASCII bytes each, so 100 tokens
by the estimate, and `max_tokens={result["max_tokens"]}` returns the same 50 messages as
`limit=50`), read by one client at a time through `chatkeep serve --workers {result["workers"]}`
(wrk) and as the bare statement (pgbench, `-M prepared`). Medians of {result["repeats"]} runs of
{result["seconds"]} s, the two reads alternating; buffers and rows are one warm `EXPLAIN (ANALYZE,
BUFFERS)` of each statement (rows: read from `messages`, the 51st being the one that tells the
page or window is not the whole history).

{header}
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

Each read costs the same at 100 and at 1,000,000 messages: both read 51 rows and the same
buffers whatever the history's length (one backward range scan of the primary key). Through
HTTP the two reads are the same within the spread of the runs. The window's bare statement takes
0.1 to 0.3 ms more than the page's (its running sums, the system messages' and the walk's
CTEs, all empty here), which the request's own cost (1 to 1.5 ms) hides. A window longer than
50 messages walks on one primary-key probe per message (about 3 buffers each). With the page
cache on, a repeated latest-50 read is a cache hit and a window is not (windows are not
cached), so `--page-cache-bytes 0` compares the reads' work. Load average {load} when the run
ended: figures move with the machine's load.
"""


def verdict(result: dict[str, Any]) -> str:
    """The latest-50 read against the aim (at most 10% over plain httpx)."""
    http = result["http"][0]
    local = {row["workload"]: row for row in result["in_process"]["reads"]}
    fastest = local["latest 50, plain httpx with msgspec"]
    met = "met" if max(http["overhead"], result["http"][1]["overhead"]) <= 0.10 else "not met"
    plain = result["http"][1]
    return f"""The aim, at most 10% on a latest-50 read over HTTP: {http["overhead"]:+.1%} against
`response.json()`, {plain["overhead"]:+.1%} against msgspec into dicts ({met}). The client's own
work per call (building the call, the retry bookkeeping, decoding into Structs) is what the
in-process rows show: against `response.json()` it saves the standard library's slower
decoding; against msgspec into dicts it costs
{fastest["difference_us"]:+.0f} µs a call ({fastest["overhead"]:+.1%} of a call that reaches no
server). Over HTTP the same comparison measured {plain["difference_us"]:+.0f} µs a call, more
than the client's work alone; where the rest goes was not pinned down, and it is small next to
the call itself (about {http["raw_p50_us"] / 1000:.1f} ms over loopback)."""


def client_section(out: Path) -> str:
    """What the Python client costs per call, from `python -m bench.client`, when it has run."""
    path = out / "client_results.json"
    if not path.exists():
        return ""
    result = json.loads(path.read_text())

    def rows(measured: list[dict[str, Any]]) -> str:
        return "\n".join(
            f"| {row['workload']} | {row['raw_p50_us']:,.0f} | {row['client_p50_us']:,.0f} | "
            f"{row['overhead']:+.1%} | {min(row['round_overheads']):+.1%} to "
            f"{max(row['round_overheads']):+.1%} | {row['difference_us']:+,.0f} | "
            f"{row['raw_p99_us']:,.0f} | {row['client_p99_us']:,.0f} |"
            for row in measured
        )

    head = (
        "| calls | plain httpx p50 µs | client p50 µs | client cost | per round | "
        "per call µs | plain p99 µs | client p99 µs |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    local = result["in_process"]
    packages = ", ".join(f"{name} {version}" for name, version in result["packages"].items())
    load = ", ".join(f"{value:.1f}" for value in result["load_average"])
    return f"""## Python client
Generated by `{result["command"]}` ({packages}): what `chatkeep_client` adds to a call over
plain httpx sending the very same request (method, URL, query, headers, body; an append's
messages carry ids, as the client's do), one call at a time on one kept-alive connection,
{result["rounds"]} rounds of {result["calls"]:,} calls each way, each call made both ways back
to back (alternating which goes first), so that both meet the same moment's load. Plain httpx
reads the answer with `response.json()` (the standard library's json), or with
`msgspec.json.decode` into dicts (the fastest a hand-written client reads); the client decodes
into its Structs. "Client cost" is the client's median over plain httpx's, less one; "per round"
is how far that moved between rounds; "per call" is the median of the differences between each
client call and the plain one made next to it.

Over HTTP, to `chatkeep serve --workers 1` ({result["conversations"]} conversations of
{result["history"]} messages of about 400 bytes with two citations in their metadata):

{head}
{rows([*result["http"], result["http_async"]])}

In process, against a canned copy of one latest-50 answer ({local["answer_bytes"]:,} bytes,
`httpx.MockTransport`: no network, no server), where only the client's own work differs:

{head}
{rows(local["reads"])}

{verdict(result)}
{result["machine_note"].capitalize()} (load average {load} when it ended): absolute figures move
with that load; making each call both ways back to back is what keeps the two columns comparable.
"""


def write(run: dict[str, Any], out: Path) -> None:
    # Here: bench.observability imports bench.run, which imports this module.
    from bench.observability import section as observability_section
    from bench.page_cache import section as page_cache_section
    from bench.pgbouncer import section as pgbouncer_section
    from bench.turns import section as turns_section

    _plot_throughput(run, out)
    _plot_growth(run, out)
    _plot_concurrency(run, out)
    shape = run["shape"]
    facts = "\n".join(f"- {key}: {value}" for key, value in run["machine"].items())
    memory = "\n".join(
        f"- {target}: " + ", ".join(f"{mib:.0f} MiB" for mib in sorted(values))
        for target, values in run["peak_rss_mib"].items()
    )
    notes = (out / "NOTES.md").read_text() if (out / "NOTES.md").exists() else ""
    (out / "REPORT.md").write_text(
        f"""# chatkeep benchmark report

Generated by `{run["command"]}` (writes this file, `results.json` and the plots). Numbers
are medians of {run["repeats"]} runs of {run["seconds"]:g} s each; "spread" is half the range of
chatkeep's rate across those runs, relative to the median. They are never asserted in tests.

## Set-up
{facts}
- data set: {shape["conversations"]:,} conversations x {shape["messages"]} messages (content about
  400 bytes, metadata with two citations), {shape["users"]} users; for (d) one conversation of
  each of {", ".join(f"{size:,}" for size in shape["growth"])} messages. Loaded in
  {run["load_seconds"]:.0f} s.
- chatkeep: `chatkeep serve --workers {run["workers"]}` (uvicorn, uvloop, httptools), every
  request authenticated with an API key, access log off (`CHATKEEP_LOG_LEVEL=warning`).
- bare: `bench/bare_asgi.py`, the same routes and SQL through asyncpg with the same pool
  settings and uvicorn flags, no framework and no authentication.
- pgbench: `pgbench -n -M prepared` running the statements of `sql/*.sql` (generated from the
  registry by `bench/pgbench_scripts.py`) at the same concurrency.
- load generator: wrk with `bench/wrk/chatkeep.lua` (random conversation or user per request),
  on the same 2-core machine as the server and PostgreSQL: all three compete for the same cores.
- whole run: {run["total_seconds"] / 60:.0f} minutes.

## Results

{table(run)}
![throughput](throughput.png)

![concurrency](concurrency.png)

![growth](growth.png)

{imports_section(out)}
{search_section(out)}
{events_section(out)}
{context_section(out)}
{client_section(out)}
{observability_section(out)}
{page_cache_section(out)}
{pgbouncer_section(out)}
{turns_section(out)}
## Memory
Peak RSS (VmHWM) of each uvicorn worker after all workloads:
{memory}

{notes}"""
    )


if __name__ == "__main__":
    # Re-render REPORT.md and the plots from the last run's results.json (e.g. after NOTES.md).
    here = Path(__file__).parent
    write(json.loads((here / "results.json").read_text()), here)
