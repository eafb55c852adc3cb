"""The demo behind `make demo`: the whole pipeline on the bundled churn data, then a served prediction.

Runs the real command line: `tabpipe run`, `tabpipe serve` on a free loopback port, one
Open Inference Protocol request, and prints the prediction.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in time")


def main() -> None:
    budget = os.environ.get("TABPIPE_DEMO_BUDGET", "30")
    tabpipe = str(BIN / "tabpipe")
    data = HERE / "data" / "churn.csv"
    subprocess.run(
        [tabpipe, "run", str(data), "--target", "Churn", "--time-budget", budget], check=True
    )
    subprocess.run([tabpipe, "models", "list"], check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([tabpipe, "serve", "churn", "--port", str(port)])
    try:
        wait_ready(url, server)
        body = json.loads((HERE / "oip_request.json").read_text(encoding="utf-8"))
        response = httpx.post(f"{url}/v2/models/churn/infer", json=body, timeout=10.0)
        response.raise_for_status()
        outputs = {o["name"]: o["data"][0] for o in response.json()["outputs"]}
        print("served prediction for one customer:", json.dumps(outputs))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
