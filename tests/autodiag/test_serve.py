"""The real command, as an operator starts it: `r2dde autodiag serve` answers a diagnosis, and
nothing a person typed appears in what the process prints or logs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from autodiag_fixtures import ANSWERS


def test_serve_answers_and_prints_no_answer(study_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r2dde = str(Path(sys.executable).with_name("r2dde"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [r2dde, "autodiag", "serve", "--study", str(study_dir), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(base + "/sante", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
        answers = {**ANSWERS, "lieu": "Barcelonnette", "mois": "173"}
        page = httpx.post(base + "/diagnostic", data=answers, timeout=30)
        assert page.status_code == 200 and "Votre chance" in page.text
        assert "server" not in page.headers  # no server banner
        bad = httpx.post(base + "/diagnostic", data={**answers, "rayon": "Barcelonnette"}, timeout=30)
        assert bad.status_code == 422
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "porte d'équité passée" in output  # what it serves, said at start
    assert "Barcelonnette" not in output and "173" not in output and "gériatrie" not in output
