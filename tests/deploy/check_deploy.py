#!/usr/bin/python3
"""Checks that the files under deploy/ work as shipped.

- Kubernetes manifests parse, carry the probes and rollout settings the README promises,
  and obey the timing rule: drain delay + shutdown timeout < terminationGracePeriodSeconds.
- The server flags in every deploy file (Kubernetes args, Dockerfile ENTRYPOINT, systemd
  ExecStart) are accepted by the built graceful-server: it starts with them, answers
  /readyz, and exits 0 on SIGTERM.
- systemd units pass `systemd-analyze verify`.

usage: check_deploy.py SOURCE_DIR BIN_DIR
"""
import json
import os
import re
import shlex
import shutil
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def seconds(text):
    """Go-style duration ("10s", "250ms", "1m30s") in seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if text != "0" and "".join(n + u for n, u in parts) != text:
        raise ValueError(f"bad duration {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def flag(args, name):
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
        if a == name and i + 1 < len(args):
            return args[i + 1]
    return None


def logged_port(proc, deadline):
    """The port graceful-server logs as "listening on ... (port N)": it binds port 0, so no
    other process can take the port between choosing it and binding it."""
    out = b""
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        out += chunk
        m = re.search(rb"\(port (\d+)\)", out)
        if m and int(m.group(1)) != 0:
            return int(m.group(1)), out
    return None, out


def run_server_with(binary, args, what):
    """Starts graceful-server with the deploy file's args (listen moved to a free loopback
    port, paths into a temp dir) and checks that it serves and stops cleanly."""
    tmp = tempfile.mkdtemp(prefix="graceful-deploy-")
    fixed = []
    skip = False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in ("--listen", "--diag-dir", "--pid-file"):
            if "=" not in a:
                skip = True
            continue
        fixed.append(a)
    fixed += ["--listen", "127.0.0.1:0", "--diag-dir", tmp,
              "--pid-file", os.path.join(tmp, "server.pid")]
    # The manifests' drain delay was parsed by the server above; a short one keeps the test fast.
    fixed = ["--drain-delay=100ms" if a.startswith("--drain-delay") else a for a in fixed]
    proc = subprocess.Popen([binary] + fixed, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        status = None
        end = time.monotonic() + 10
        port, early = logged_port(proc, end)
        check(port is not None, f"{what}: graceful-server logs its port ({early.decode(errors='replace')[-500:]})")
        while port and time.monotonic() < end and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    status = r.status
                    break
            except Exception:
                time.sleep(0.05)
        check(status == 200, f"{what}: graceful-server starts with {' '.join(args)} and /readyz is 200")
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        check(code == 0, f"{what}: SIGTERM -> exit 0 (got {code})")
        if code != 0:
            print(proc.stdout.read().decode(errors="replace")[-3000:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def check_kubernetes(src, binary):
    path = os.path.join(src, "deploy/kubernetes/graceful-server.yaml")
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kinds = {d["kind"]: d for d in docs}
    check(set(kinds) >= {"Deployment", "Service", "PodDisruptionBudget"},
          "kubernetes: Deployment, Service and PodDisruptionBudget present")
    dep = kinds["Deployment"]
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "kubernetes: readinessProbe on /readyz")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "kubernetes: livenessProbe on /healthz")
    ru = dep["spec"]["strategy"]["rollingUpdate"]
    check(dep["spec"]["strategy"]["type"] == "RollingUpdate" and ru["maxUnavailable"] == 0,
          "kubernetes: rolling update with maxUnavailable 0")
    sel = kinds["Service"]["spec"]["selector"]
    check(sel == dep["spec"]["selector"]["matchLabels"] == kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
          "kubernetes: Service and PDB select the Deployment's pods")
    args = c["args"]
    drain = seconds(flag(args, "--drain-delay"))
    stop = seconds(flag(args, "--shutdown-timeout"))
    grace = spec["terminationGracePeriodSeconds"]
    check(drain > 0, f"kubernetes: a drain delay is set ({drain}s) so endpoint removal lands first")
    check(drain + stop < grace,
          f"kubernetes: drain delay {drain}s + shutdown timeout {stop}s < grace period {grace}s")
    # Probe period must let the endpoint go before the drain delay ends.
    rp = c["readinessProbe"]
    check(rp["periodSeconds"] * rp["failureThreshold"] < drain,
          "kubernetes: readiness probe notices draining well within the drain delay")
    if binary:
        run_server_with(binary, args, "kubernetes")


def check_dockerfile(src, binary):
    with open(os.path.join(src, "deploy/Dockerfile")) as f:
        text = f.read()
    check(len(re.findall(r"^FROM debian:12", text, re.M)) >= 2, "Dockerfile: multi-stage on Debian 12")
    check(re.search(r"^STOPSIGNAL SIGTERM$", text, re.M) is not None, "Dockerfile: STOPSIGNAL SIGTERM")
    user = re.search(r"^USER (\S+)", text, re.M)
    check(user is not None and not user.group(1).startswith("0") and user.group(1) != "root",
          "Dockerfile: runs as a non-root user")
    m = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    check(m is not None, "Dockerfile: exec-form ENTRYPOINT")
    if m and binary:
        entry = json.loads(m.group(1))
        check(entry[0] == "/usr/local/bin/graceful-server", "Dockerfile: the server is the entrypoint")
        run_server_with(binary, entry[1:], "Dockerfile")


def check_systemd(src, binary):
    unit_dir = os.path.join(src, "deploy/systemd")
    with open(os.path.join(unit_dir, "graceful-server.service")) as f:
        service = f.read()
    check("Type=notify" in service, "systemd: Type=notify")
    check(re.search(r"^NotifyAccess=(all|exec)$", service, re.M) is not None,
          "systemd: NotifyAccess lets the upgraded child notify")
    check(re.search(r"^ExecReload=.*-HUP", service, re.M) is not None, "systemd: ExecReload sends SIGHUP")
    m = re.search(r"^ExecStart=(\S+)(.*)$", service, re.M)
    if binary and m:
        run_server_with(binary, shlex.split(m.group(2)), "systemd")
    analyze = shutil.which("systemd-analyze")
    if analyze and binary:
        tmp = tempfile.mkdtemp(prefix="graceful-units-")
        try:
            for name in ("graceful-server.service", "graceful-server.socket"):
                with open(os.path.join(unit_dir, name)) as f:
                    text = f.read().replace("/usr/local/bin/graceful-server", binary)
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
            r = subprocess.run([analyze, "verify", "--man=no",
                                os.path.join(tmp, "graceful-server.socket"),
                                os.path.join(tmp, "graceful-server.service")],
                               capture_output=True, text=True, timeout=60)
            # Containers without a running systemd still verify unit syntax; only keep
            # complaints about our own files.
            ours = [l for l in (r.stdout + r.stderr).splitlines() if "graceful-server" in l]
            check(not ours, "systemd: systemd-analyze verify finds nothing in the units"
                  + ("" if not ours else ":\n  " + "\n  ".join(ours)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    src = sys.argv[1]
    bindir = sys.argv[2] if len(sys.argv) > 2 else ""
    binary = os.path.abspath(os.path.join(bindir, "graceful-server")) if bindir else ""
    if binary and not os.access(binary, os.X_OK):
        binary = ""
    check_kubernetes(src, binary)
    check_dockerfile(src, binary)
    check_systemd(src, binary)
    total = len(failures)
    print(f"deploy: {total} failed" if total else "deploy: all checks passed")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
