"""Serving benchmark: tabpipe's server against ``mlflow models serve`` of the same model.

For the champion of each dataset (trained here by ``tabpipe run``):

1. in-process single-row latency: the ONNX predictor (validation included) and
   the native scikit-learn pipeline, median and p99 of many calls;
2. over HTTP on loopback, one row per request, with wrk in a separate process:
   p50/p99 latency and throughput at 1, 8 and 64 connections, tabpipe and
   ``mlflow models serve`` (of tabpipe's MLflow export) interleaved in the same
   run, with the same number of workers (``--workers``, default 1), all answering
   ``POST /invocations``; and, as the
   floor, a bare FastAPI + onnxruntime endpoint on the same ``model.onnx``
   (``benchmarks/peers/bare_onnx_app.py``: no validation, metrics, ids nor logs).
   For tabpipe and the floor, the server's CPU time per request (from
   ``/proc``) is given too: it moves much less than latency when the machine is
   shared.

tabpipe's server runs with validation, Prometheus metrics and its JSON access
log (to a file) switched on. Results replace the "Serving" section of
BENCHMARKS.md.

Run:  .venv/bin/python benchmarks/serving.py [--duration 10] [--time-budget 20] [--workers 1]
Needs: wrk (system package) and an MLflow venv at ~/.cache/tabpipe-peers/mlflow.

In process only (no wrk, MLflow nor HTTP; prints, leaves BENCHMARKS.md alone):
      .venv/bin/python benchmarks/serving.py --in-process-only [--workspaces DIR]
          [--time-budget 60 --max-trials 8] [--repeats 5] [--members]
``--max-trials`` with a generous budget trains the same models on every run, so two
versions of the code can be compared on the same ensembles; ``--workspaces`` keeps them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
MLFLOW_BIN = Path.home() / ".cache" / "tabpipe-peers" / "mlflow" / "bin"
PEERS = Path(__file__).resolve().parent / "peers"
DATASETS = {
    "titanic": (ROOT / "tests" / "data" / "titanic.csv", "Survived"),
    "churn": (ROOT / "examples" / "data" / "churn.csv", "Churn"),
}
CONNECTIONS = (1, 8, 64)
SYSTEMS = ("tabpipe", "mlflow", "bare")
SECTION = "## Serving"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(workspace: Path, name: str, budget: float, max_trials: int | None = None) -> None:
    """``tabpipe run`` of the dataset; with ``max_trials``, through a spec that caps the
    search by a count, so that every run (and every version of the code) trains the same
    models."""
    data, target = DATASETS[name]
    if max_trials is None:
        source = [str(data), "--target", target, "--name", name, "--time-budget", str(budget)]
    else:
        workspace.mkdir(parents=True, exist_ok=True)
        spec = workspace.parent / f"{name}-spec.yaml"  # JSON is YAML
        spec.write_text(
            json.dumps(
                {
                    "name": name,
                    "source": {"path": str(data)},
                    "target": target,
                    "time_budget": budget,
                    "max_trials": max_trials,
                }
            )
        )
        source = [str(spec)]
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from tabpipe.cli import main; main()",
            "run",
            *source,
            "-q",
            "-w",
            str(workspace),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def example_row(workspace: Path, name: str) -> dict[str, Any]:
    """A real row of the dataset (first row), restricted to the signature's columns."""
    import pandas as pd

    from tabpipe.registry import Registry
    from tabpipe.workspace import Workspace

    with Workspace(workspace) as ws:
        manifest = Registry(ws).resolve(name)
        from tabpipe.packaging.bundle import read_manifest

        m = read_manifest(manifest.path)
    frame = pd.read_csv(DATASETS[name][0], nrows=1)
    row: dict[str, Any] = {}
    for col in m.signature.columns:
        value = frame[col.name].iloc[0] if col.name in frame else None
        if col.kind == "numeric":
            number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
            row[col.name] = None if pd.isna(number) else float(number)
        else:
            row[col.name] = None if pd.isna(value) else str(value)
    return row


def in_process(
    workspace: Path, name: str, row: dict[str, Any], *, repeats: int = 1, native: bool = True
) -> dict[str, float]:
    """Single-row latency in process: validation plus prediction, then each part alone.

    ``onnx_*`` is ``predict(signature.check(columns).feeds)``, the serving path;
    ``check_p50_us``, ``predict_p50_us`` and ``run_p50_us`` (the bare
    ``session.run`` of the bundle's graph on prepared feeds) split it. With
    ``repeats`` > 1 the rounds are interleaved and each figure is the median
    over the rounds.
    """
    import onnxruntime as ort

    from tabpipe.registry import Registry
    from tabpipe.serving.runtime import load_predictor
    from tabpipe.workspace import Workspace

    with Workspace(workspace) as ws:
        path = Registry(ws).resolve(name).path
    columns = {k: [v] for k, v in row.items()}
    predictor = load_predictor(path, "onnx")
    sig = predictor.manifest.signature
    feeds = sig.check(columns).feeds
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(path / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
    )
    onnx_feeds = {
        i.name: feeds[c.name] for i, c in zip(session.get_inputs(), sig.columns, strict=True)
    }
    output = session.get_outputs()[-1].name
    steps = {
        "onnx": lambda: predictor.predict(sig.check(columns).feeds),
        "check": lambda: sig.check(columns),
        "predict": lambda: predictor.predict(feeds),
        "run": lambda: session.run([output], onnx_feeds),
    }
    rounds: dict[str, list[tuple[float, float]]] = {step: [] for step in steps}
    for _ in range(repeats):
        for step, call in steps.items():
            rounds[step].append(_timed(call, 3000))
    out: dict[str, float] = {}
    for step, figures in rounds.items():
        out[f"{step}_p50_us"] = statistics.median(p50 for p50, _ in figures)
        out[f"{step}_p99_us"] = statistics.median(p99 for _, p99 in figures)
    if native:
        slow = load_predictor(path, "native")
        p50, p99 = _timed(lambda: slow.predict(slow.manifest.signature.check(columns).feeds), 300)
        out["native_p50_us"], out["native_p99_us"] = p50, p99
    return out


def _timed(call: Any, calls: int) -> tuple[float, float]:
    """Median and p99 in µs of ``calls`` calls, after a warm-up."""
    for _ in range(min(calls // 10, 200)):
        call()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


def wait_ready(url: str, path: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def start_tabpipe(
    workspace: Path, name: str, port: int, log: Path, workers: int = 1
) -> subprocess.Popen[bytes]:
    """tabpipe's server as ``tabpipe serve`` runs it (``tabpipe.serving.server``)."""
    from tabpipe.serving.settings import ServeSettings

    settings = ServeSettings(workspace=workspace, model=name, poll_seconds=5)
    env = {"TABPIPE_SERVE_SETTINGS": settings.model_dump_json()}
    command = [sys.executable, "-m", "tabpipe.serving.server", "--port", str(port)]
    return _start([*command, "--workers", str(workers)], env, log)


def start_bare(bundle: Path, port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    """The floor: a bare FastAPI + onnxruntime endpoint on the same model.onnx."""
    command = [sys.executable, "-m", "uvicorn", "--factory", "bare_onnx_app:create"]
    command += ["--app-dir", str(PEERS), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    return _start(command, {"BARE_BUNDLE": str(bundle)}, log)


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A server process on loopback, quiet, in its own session."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            command,
            env={**os.environ, **env},
            stderr=sink,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (worker processes)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += _tree(int(child))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its workers (Linux ``/proc``)."""
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def start_mlflow(model: Path, port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATH": f"{MLFLOW_BIN}:{os.environ['PATH']}"}
    with log.open("wb") as sink:
        return subprocess.Popen(
            [
                str(MLFLOW_BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                str(model),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "--env-manager",
                "local",
                "-w",
                str(workers),
            ],
            env=env,
            stderr=sink,
            stdout=sink,
            start_new_session=True,
        )


def wrk(
    url: str, body: str, connections: int, duration: int, tmp: Path, pid: int | None = None
) -> dict[str, float]:
    """wrk's figures; with ``pid``, also the server's CPU time per request (``cpu_us``)."""
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    threads = min(connections, 2)
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    done = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url + "/invocations",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = parse_wrk(done.stdout)
    if pid is not None:
        result["cpu_us"] = (cpu_seconds(pid) - cpu_before) / max(result["requests"], 1) * 1e6
    return result


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    assert p50 and p99 and rps and total, out
    return {
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "rps": float(rps.group(1)),
        "requests": float(total.group(1)),
        "failed": float(non2xx.group(1) if non2xx else 0)
        + (sum(int(g) for g in errors.groups()) if errors else 0),
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_dataset(
    name: str, workspace: Path, tmp: Path, duration: int, workers: int = 1
) -> tuple[dict[str, float], dict[str, dict[int, dict[str, float]]], str]:
    from tabpipe.packaging.bundle import read_manifest
    from tabpipe.packaging.export import export_registered
    from tabpipe.registry import Registry
    from tabpipe.workspace import Workspace

    row = example_row(workspace, name)
    local = in_process(workspace, name, row)
    mlflow_model = tmp / f"{name}-mlflow"
    with Workspace(workspace) as ws:
        export_registered(ws, name, "mlflow", mlflow_model)
        bundle = Registry(ws).resolve(name).path
        family = read_manifest(bundle).family
    body = json.dumps({"dataframe_split": {"columns": list(row), "data": [list(row.values())]}})
    ports = {system: free_port() for system in SYSTEMS}
    urls = {system: f"http://127.0.0.1:{port}" for system, port in ports.items()}
    logs = {system: tmp / f"{name}-{system}.log" for system in SYSTEMS}
    servers = {
        "tabpipe": start_tabpipe(workspace, name, ports["tabpipe"], logs["tabpipe"], workers),
        "mlflow": start_mlflow(mlflow_model, ports["mlflow"], logs["mlflow"], workers),
        "bare": start_bare(bundle, ports["bare"], logs["bare"], workers),
    }
    http: dict[str, dict[int, dict[str, float]]] = {system: {} for system in SYSTEMS}
    try:
        wait_ready(urls["tabpipe"], "/v2/health/ready", servers["tabpipe"])
        wait_ready(urls["mlflow"], "/ping", servers["mlflow"])
        wait_ready(urls["bare"], "/ping", servers["bare"])
        for url in urls.values():  # every server answers before timing anything
            r = httpx.post(
                url + "/invocations", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 200, r.text
        for connections in CONNECTIONS:
            for system in SYSTEMS:
                # mlflow serves from worker processes: its CPU time is not read
                pid = None if system == "mlflow" else servers[system].pid
                http[system][connections] = wrk(urls[system], body, connections, duration, tmp, pid)
                print(name, system, connections, http[system][connections], flush=True)
    finally:
        for proc in servers.values():
            stop(proc)
    return local, http, family


def targets(results: dict[str, Any]) -> list[str]:
    """The product targets, each with the measured figure and met or not."""
    out = []
    for name, r in results.items():
        limit = 100 if r["family"] in {"ensemble", "stack"} else 50
        onnx = r["local"]["onnx_p50_us"]
        t8, m8, b8 = (r["http"][system][8] for system in SYSTEMS)
        ratio = t8["rps"] / m8["rps"] if m8["rps"] else float("inf")
        failed = r["http"]["tabpipe"][64]["failed"]
        out.append(
            f"- {name}: in-process {onnx:.0f} µs (target < {limit} µs: "
            f"{'met' if onnx < limit else 'missed'}); HTTP p50 at 8 connections "
            f"{t8['p50_ms']:.2f} ms (< 1 ms: {'met' if t8['p50_ms'] < 1 else 'missed'}), "
            f"p99 {t8['p99_ms']:.2f} ms (< 5 ms: {'met' if t8['p99_ms'] < 5 else 'missed'}); "
            f"throughput {ratio:.0f}× mlflow (≥ 30×: {'met' if ratio >= 30 else 'missed'}); "
            f"failed requests at 64 connections: {failed:.0f} ({'met' if failed == 0 else 'missed'}); "
            f"at 8 connections tabpipe spends {t8['cpu_us'] / b8['cpu_us']:.2f}× the CPU per "
            "request of the bare endpoint"
        )
    return out


def render(
    results: dict[str, Any],
    command: str,
    duration: int,
    load: tuple[float, float],
    workers: int = 1,
) -> str:
    each = "one worker each" if workers == 1 else f"{workers} worker processes each"
    lines = [
        SECTION,
        "",
        f"Command: `{command}` (wrk {duration} s per point, one row per request, "
        f"`POST /invocations` with a `dataframe_split` body to every server, {each}; "
        "systems interleaved within the run).",
        "",
        "2 cores; wrk runs on the same machine and takes CPU from the servers, so absolute "
        "numbers move by tens of percent between runs, ratios less. tabpipe runs with "
        "validation, the prediction log, Prometheus metrics, request ids and its JSON access "
        "log (to a file) on. `mlflow models serve` (MLflow 3.17) serves tabpipe's MLflow "
        "export of the same bundle, which runs the same ONNX graph through pandas in MLflow's "
        "pyfunc.",
        f"1-minute load average at the start and end of this run: {load[0]:.1f} and "
        f"{load[1]:.1f} (on 2 cores).",
        "",
        "In-process single-row latency (median / p99 of many calls, validation included):",
        "",
        "| dataset | champion | ONNX runtime p50 | p99 | native pipeline p50 | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        loc = r["local"]
        lines.append(
            f"| {name} | {r['family']} | {loc['onnx_p50_us']:.0f} µs | {loc['onnx_p99_us']:.0f} µs "
            f"| {loc['native_p50_us'] / 1000:.2f} ms | {loc['native_p99_us'] / 1000:.2f} ms |"
        )
    lines += [
        "",
        "Over HTTP on loopback (wrk); CPU is the server's CPU time per request (all its processes):"
        if workers > 1
        else "Over HTTP on loopback (wrk); CPU is the server's CPU time per request:",
        "",
        "| dataset | connections | tabpipe p50 | tabpipe p99 | tabpipe req/s | tabpipe CPU "
        "| failed | mlflow p50 | mlflow p99 | mlflow req/s | failed | throughput ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for c in CONNECTIONS:
            t, m = r["http"]["tabpipe"][c], r["http"]["mlflow"][c]
            ratio = t["rps"] / m["rps"] if m["rps"] else float("inf")
            lines.append(
                f"| {name} | {c} | {t['p50_ms']:.2f} ms | {t['p99_ms']:.2f} ms | {t['rps']:,.0f} "
                f"| {t['cpu_us']:.0f} µs | {t['failed']:.0f} | {m['p50_ms']:.2f} ms "
                f"| {m['p99_ms']:.2f} ms | {m['rps']:,.0f} | {m['failed']:.0f} | {ratio:.0f}× |"
            )
    lines += [
        "",
        "The floor, in the same run: a bare FastAPI + onnxruntime endpoint on the same "
        "`model.onnx` (`benchmarks/peers/bare_onnx_app.py`; no validation, metrics, request "
        "ids nor logs):",
        "",
        "| dataset | connections | bare p50 | bare p99 | bare req/s | bare CPU "
        "| tabpipe CPU / bare CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for c in CONNECTIONS:
            t, b = r["http"]["tabpipe"][c], r["http"]["bare"][c]
            lines.append(
                f"| {name} | {c} | {b['p50_ms']:.2f} ms | {b['p99_ms']:.2f} ms | {b['rps']:,.0f} "
                f"| {b['cpu_us']:.0f} µs | {t['cpu_us'] / b['cpu_us']:.2f} |"
            )
    lines += ["", "Against the product targets:", "", *targets(results)]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    updated = (
        pattern.sub(text + "\n", current)
        if pattern.search(current)
        else (current.rstrip("\n") + "\n\n" + text)
    )
    path.write_text(updated, encoding="utf-8")


def members_alone(workspace: Path, name: str, repeats: int) -> list[str]:
    """Table rows: each member of the champion ensemble converted and served alone
    (``predict(check(row))``, its own ONNX graph, no calibration nor threshold)."""
    from tabpipe.packaging import persist
    from tabpipe.packaging.bundle import read_manifest
    from tabpipe.packaging.onnx import to_onnx
    from tabpipe.registry import Registry
    from tabpipe.serving.runtime import OnnxPredictor
    from tabpipe.workspace import Workspace

    with Workspace(workspace) as ws:
        path = Registry(ws).resolve(name).path
    manifest = read_manifest(path)
    sig = manifest.signature
    model = persist.load(path / "pipeline.skops")
    model = getattr(model, "estimator_", model)  # inside a calibration
    columns = {k: [v] for k, v in example_row(workspace, name).items()}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for member in getattr(model, "estimators_", []):
            family = type(member.steps[-1][1]).__name__
            (Path(folder) / "model.onnx").write_bytes(
                to_onnx(member, sig, classifier=manifest.task != "regression")
            )
            alone = manifest.model_copy(
                update={"family": family, "threshold": None, "calibration": None}
            )
            predictor = OnnxPredictor(Path(folder), alone)
            figures = [
                _timed(lambda p=predictor: p.predict(sig.check(columns).feeds), 2000)
                for _ in range(repeats)
            ]
            p50 = statistics.median(f[0] for f in figures)
            p99 = statistics.median(f[1] for f in figures)
            rows.append(f"| {name} | {family} (member alone) | {p50:.1f} µs | {p99:.1f} µs |")
    return rows


def in_process_only(
    names: list[str],
    root: Path,
    budget: float,
    repeats: int,
    max_trials: int | None,
    members: bool = False,
) -> str:
    """Train (or reuse) each dataset's workspace under ``root`` and time it in process only."""
    from tabpipe.packaging.bundle import read_manifest
    from tabpipe.registry import Registry
    from tabpipe.workspace import Workspace

    lines = [
        "| dataset | champion | serving path p50 | p99 | check p50 | predict p50 "
        "| bare session.run p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        workspace = root / f"ws-{name}"
        if not workspace.is_dir() or not any(workspace.iterdir()):
            train(workspace, name, budget, max_trials)
        with Workspace(workspace) as ws:
            family = read_manifest(Registry(ws).resolve(name).path).family
        r = in_process(workspace, name, example_row(workspace, name), repeats=repeats, native=False)
        lines.append(
            f"| {name} | {family} | {r['onnx_p50_us']:.1f} µs | {r['onnx_p99_us']:.1f} µs "
            f"| {r['check_p50_us']:.1f} µs | {r['predict_p50_us']:.1f} µs "
            f"| {r['run_p50_us']:.1f} µs |"
        )
    if members:
        lines += ["", "| dataset | model | serving path p50 | p99 |", "|---|---|---|---|"]
        for name in names:
            lines += members_alone(root / f"ws-{name}", name, repeats)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--time-budget", type=float, default=20.0)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of every server (default 1)"
    )
    parser.add_argument(
        "--in-process-only",
        action="store_true",
        help="time only the in-process path (no HTTP, wrk nor MLflow); print, do not write "
        "BENCHMARKS.md",
    )
    parser.add_argument(
        "--workspaces",
        type=Path,
        help="with --in-process-only: keep the trained workspaces here (ws-<dataset>) and "
        "reuse them on the next run",
    )
    parser.add_argument("--repeats", type=int, default=5, help="with --in-process-only")
    parser.add_argument(
        "--members",
        action="store_true",
        help="with --in-process-only: also time each member of an ensemble champion alone",
    )
    parser.add_argument(
        "--max-trials",
        type=int,
        help="with --in-process-only: cap the search by this many trials (with a generous "
        "--time-budget the trained models are then the same on every run)",
    )
    args = parser.parse_args()
    if args.in_process_only:
        with tempfile.TemporaryDirectory(prefix="tabpipe-bench-") as folder:
            root = args.workspaces or Path(folder)
            table = in_process_only(
                args.datasets, root, args.time_budget, args.repeats, args.max_trials, args.members
            )
            print(table)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    if not (MLFLOW_BIN / "mlflow").exists():
        sys.exit(f"MLflow is needed in {MLFLOW_BIN.parent} (see docs/serving.md)")
    results: dict[str, Any] = {}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tabpipe-bench-") as folder:
        tmp = Path(folder)
        for name in args.datasets:
            workspace = tmp / f"ws-{name}"
            train(workspace, name, args.time_budget)
            local, http, family = bench_dataset(name, workspace, tmp, args.duration, args.workers)
            results[name] = {"local": local, "http": http, "family": family}
    command = "python benchmarks/serving.py " + " ".join(sys.argv[1:])
    load = (load_start, os.getloadavg()[0])
    text = render(results, command.strip(), args.duration, load, args.workers)
    write_section(text)
    print(text)


if __name__ == "__main__":
    main()
