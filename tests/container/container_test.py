#!/usr/bin/python3
"""The image built from deploy/Dockerfile, run in podman the way users run it (ctest label
`container`). Every container runs with --network none; clients (curl, graceful-bench built
on the host) run inside its network namespace through nsenter, so the image's fixed port 8080
is 127.0.0.1:8080 of that namespace and collides with nothing on a shared machine.

usage: container_test.py BIN_DIR TEST
  build        both targets build from the Dockerfile unmodified (--pull=never); sizes, times
  serve        target server: runs as uid 10001, graceful-server is PID 1, GET / answers
  stop         `podman stop` with requests in flight: each answered, exit 0, before the timeout
  dump         SIGUSR1 writes a stack dump into the writable diag directory /var/lib/graceful
  kubernetes   the Kubernetes manifest's args replace the image's CMD and serve
  supervised   target supervised: graceful-run PID 1, 5 x `podman kill --signal HUP` under
               graceful-bench load (keep-alive and close): 0 failed, no zombie, PID 1 stays
  systemd      deploy/systemd units, unchanged, under systemd as PID 1 in a container:
               socket, reload and restart under load: 0 failed; stop drains

Exit 0 passed, 1 failed, 77 skipped (podman cannot run here and CI is not set; with CI=1 that
is a failure).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
PODMAN = os.path.join(HERE, "podman.sh")
IMAGE = "localhost/graceful-server:test"
SUPERVISED = "localhost/graceful-server:test-supervised"
BUILDER = "localhost/graceful-server:test-builder"
SYSTEMD_IMAGE = "localhost/graceful-server:test-systemd"
SKIP = 77

failures = []
containers = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def figure(text):
    print(f"[figure] {text}", flush=True)


def pm(*args, check_rc=True, timeout=120, capture=True):
    r = subprocess.run([PODMAN, *args], capture_output=capture, text=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"podman.sh {' '.join(args)} -> {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def eventually(pred, seconds, step=0.1):
    end = time.monotonic() + seconds
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


def start(image, *args, extra=()):
    """podman run -d; returns the container name. Removed at exit whatever happens."""
    name = f"graceful-test-{os.getpid()}-{len(containers)}"
    containers.append(name)
    pm("run", "-d", "--name", name, "--network", "none", *extra, image, *args)
    return name


def cleanup():
    for c in containers:
        subprocess.run([PODMAN, "rm", "-f", "-t", "0", c], capture_output=True, timeout=60)


def pid_of(c):
    return int(pm("inspect", "-f", "{{.State.Pid}}", c).stdout.strip())


def netns(c):
    """Command prefix that runs a host program in the container's network namespace."""
    return ["nsenter", f"--net=/proc/{pid_of(c)}/ns/net", "--"]


def logs(c):
    r = pm("logs", c, check_rc=False)
    return r.stdout + r.stderr


def curl(c, path="/", timeout=5):
    r = subprocess.run(netns(c) + ["curl", "-s", "-m", str(timeout), "-o", "-", "-w", "\n%{http_code}",
                                   f"http://127.0.0.1:8080{path}"], capture_output=True, text=True)
    body, _, code = r.stdout.rpartition("\n")
    return (int(code) if code.isdigit() else 0), body


def wait_serving(c, seconds=30):
    return eventually(lambda: curl(c, "/readyz", 2)[0] == 200, seconds)


def exit_code(c):
    return int(pm("inspect", "-f", "{{.State.ExitCode}}", c).stdout.strip())


def in_container(c, script):
    return pm("exec", c, "sh", "-c", script).stdout


def processes(c):
    """[(pid, ppid, state, comm)] inside the container, from /proc (no ps in the image)."""
    out = in_container(c, 'for f in /proc/[0-9]*/stat; do cat "$f" 2>/dev/null; echo; done')
    procs = []
    for line in out.splitlines():
        m = re.match(r"(\d+) \((.*)\) (\S) (\d+)", line)
        if m:
            procs.append((int(m.group(1)), int(m.group(4)), m.group(3), m.group(2)))
    return procs


def bench(c, bin_dir, *args):
    """graceful-bench in the container's network namespace, until SIGINT; JSON to a file."""
    out = tempfile.NamedTemporaryFile(prefix="graceful-container-bench-", suffix=".json", delete=False)
    out.close()
    p = subprocess.Popen(netns(c) + [os.path.join(bin_dir, "graceful-bench"), "http://127.0.0.1:8080/",
                                     "-d", "300s", "--json", out.name, *args],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p, out.name


def bench_result(p, path):
    p.send_signal(2)  # SIGINT: stop sending, finish in-flight requests, report
    text = p.communicate(timeout=60)[0]
    try:
        with open(path) as f:
            return json.load(f), text
    finally:
        os.unlink(path)


def podman_usable():
    r = subprocess.run([PODMAN, "check"], capture_output=True, text=True, timeout=1800)
    if r.returncode == 0:
        return True
    print(r.stdout + r.stderr)
    return False


# ---- tests ----

def prune():
    """Drops the untagged images earlier builds left (each builder stage is ~900 MB). The
    builder stage is tagged (BUILDER), so its apt layer stays cached for the next build."""
    pm("image", "prune", "-f", check_rc=False, timeout=300)


def t_build(bin_dir):
    sizes = {}
    for target, tag in (("build", BUILDER), ("server", IMAGE), ("supervised", SUPERVISED)):
        t0 = time.monotonic()
        r = pm("build", target, tag, timeout=3600, capture=True, check_rc=False)
        took = time.monotonic() - t0
        if not check(r.returncode == 0, f"build: target {target} builds from deploy/Dockerfile unmodified "
                     f"with --pull=never ({took:.0f} s)"):
            print((r.stdout + r.stderr)[-6000:])
            continue
        figure(f"container image build, target {target}: {took:.0f} s")
        if target == "build":
            continue
        size = int(pm("image", "inspect", "-f", "{{.Size}}", tag).stdout.strip())
        sizes[target] = size
        figure(f"container image size, target {target}: {size / 1e6:.1f} MB")
    prune()
    if "server" in sizes:
        user = pm("image", "inspect", "-f", "{{.Config.User}}", IMAGE).stdout.strip()
        check(user == "10001:10001", f"build: image user is 10001:10001 (got {user!r})")


def t_serve(bin_dir):
    c = start(IMAGE)
    if not check(wait_serving(c), "serve: /readyz answers 200"):
        print(logs(c))
        return
    code, body = curl(c, "/")
    check(code == 200 and body == "Hello, World!\n", f"serve: GET / -> 200 'Hello, World!' (got {code} {body!r})")
    status = in_container(c, "cat /proc/1/status")
    uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.M)
    check(uid is not None and uid.group(1) == uid.group(2) == "10001",
          f"serve: PID 1 runs as uid 10001 (got {uid.group(0) if uid else status[:200]!r})")
    comm = in_container(c, "cat /proc/1/comm").strip()
    check(comm == "graceful-server", f"serve: PID 1 is graceful-server (got {comm!r})")
    pm("stop", "-t", "10", c)
    check(exit_code(c) == 0, f"serve: podman stop -> exit 0 (got {exit_code(c)})")


def t_stop(bin_dir):
    c = start(IMAGE)
    if not check(wait_serving(c), "stop: serving"):
        print(logs(c))
        return
    n, ms = 4, 3000
    ns = netns(c)
    clients = [subprocess.Popen(ns + ["curl", "-s", "-m", "30", "-o", "-", "-w", "\n%{http_code}",
                                      f"http://127.0.0.1:8080/slow?ms={ms}"],
                                stdout=subprocess.PIPE, text=True) for _ in range(n)]

    def in_flight():
        code, body = curl(c, "/metrics")
        m = re.search(r"^graceful_http_in_flight_requests (\d+)", body, re.M)
        return code == 200 and m is not None and int(m.group(1)) >= n
    check(eventually(in_flight, 10), f"stop: {n} requests in flight before the stop")
    t0 = time.monotonic()
    pm("stop", "-t", "10", c, timeout=60)
    took = time.monotonic() - t0
    answered = 0
    for p in clients:
        out = p.communicate(timeout=30)[0]
        body, _, code = out.rpartition("\n")
        answered += code == "200"
    check(answered == n, f"stop: each in-flight request got its 200 ({answered} of {n})")
    code = exit_code(c)
    check(code == 0, f"stop: exit code 0 (got {code}; 137 would mean SIGKILL at the stop timeout)")
    check(took < 10, f"stop: the container stopped within the 10 s stop timeout ({took:.1f} s)")
    figure(f"podman stop with {n} x {ms} ms requests in flight: {took:.1f} s, {answered}/{n} answered, exit {code}")


def t_dump(bin_dir):
    for image, who in ((IMAGE, "server"), (SUPERVISED, "supervised")):
        c = start(image)
        if not check(wait_serving(c), f"dump ({who}): serving"):
            print(logs(c))
            continue
        pm("kill", "--signal", "USR1", c)
        m = eventually(lambda: re.search(r"thread dump written to (\S+)", logs(c)), 15)
        if not check(m is not None, f"dump ({who}): SIGUSR1 -> 'thread dump written to ...' logged"):
            print(logs(c))
            continue
        path = m.group(1)
        check(path.startswith("/var/lib/graceful/"), f"dump ({who}): the dump is in /var/lib/graceful ({path})")
        text = in_container(c, f"cat '{path}'")
        check("thread" in text.lower() and len(text) > 100,
              f"dump ({who}): the dump has the threads' stacks ({len(text)} bytes)")
        pm("stop", "-t", "10", c)
        check(exit_code(c) == 0, f"dump ({who}): exit 0 after the dump")


def t_kubernetes(bin_dir):
    with open(os.path.join(SRC, "deploy/kubernetes/graceful-server.yaml")) as f:
        dep = next(d for d in yaml.safe_load_all(f) if d and d.get("kind") == "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    # The manifest's drain delay waits for endpoint removal, which does not exist here.
    args = ["--drain-delay=100ms" if a.startswith("--drain-delay") else a for a in args]
    c = start(IMAGE, *args)
    ok = check(wait_serving(c), f"kubernetes: the image serves with the manifest's args {' '.join(args)}")
    if not ok:
        print(logs(c))
        return
    pm("stop", "-t", "30", c, timeout=60)
    check(exit_code(c) == 0, f"kubernetes: exit 0 (got {exit_code(c)})")


def t_supervised(bin_dir):
    c = start(SUPERVISED)
    if not check(wait_serving(c), "supervised: serving"):
        print(logs(c))
        return
    host_pid = pid_of(c)
    comm = in_container(c, "cat /proc/1/comm").strip()
    check(comm == "graceful-run", f"supervised: PID 1 is graceful-run (got {comm!r})")
    ka, ka_out = bench(c, bin_dir, "-c", "8")
    cl, cl_out = bench(c, bin_dir, "-c", "4", "--close")
    restarts = 5
    try:
        time.sleep(1)  # load running before the first restart (bench has no readiness line)
        for i in range(1, restarts + 1):
            pm("kill", "--signal", "HUP", c)
            if not check(eventually(lambda: logs(c).count("upgrade complete") >= i, 30),
                         f"supervised: restart {i} of {restarts} completes"):
                print(logs(c)[-4000:])
                break
            # The old worker has drained and been reaped before the next restart.
            eventually(lambda: logs(c).count("old worker ") >= i, 20)
    finally:
        ka_res, ka_text = bench_result(ka, ka_out)
        cl_res, cl_text = bench_result(cl, cl_out)
    for name, res, text in (("keep-alive", ka_res, ka_text), ("close", cl_res, cl_text)):
        failed = res["failures"]["total"]
        check(res["ok"] > 0 and failed == 0,
              f"supervised: {restarts} HUP restarts under {name} load: {res['ok']} ok, {failed} failed")
        if failed:
            print(text[-3000:])
        figure(f"container supervised, {restarts} x podman kill --signal HUP, graceful-bench {name} "
               f"-c {res['options']['connections']}: {failed} failed of {res['requests']}")
    procs = processes(c)
    zombies = [p for p in procs if p[2] == "Z"]
    check(not zombies, f"supervised: no zombie in the container ({zombies})")
    workers = [p for p in procs if p[3] == "graceful-server"]
    check(len(workers) == 1 and workers[0][1] == 1,
          f"supervised: exactly one graceful-server, a child of PID 1 ({workers})")
    comm = in_container(c, "cat /proc/1/comm").strip()
    check(comm == "graceful-run" and pid_of(c) == host_pid,
          f"supervised: graceful-run is still PID 1, the same process (host pid {host_pid})")
    pm("stop", "-t", "10", c, timeout=60)
    check(exit_code(c) == 0, f"supervised: podman stop -> exit 0 (got {exit_code(c)})")


def systemctl(c, *args, timeout=120):
    return pm("exec", c, "systemctl", *args, check_rc=False, timeout=timeout)


def unit_prop(c, prop, unit="graceful-server.service"):
    return systemctl(c, "show", "-p", prop, "--value", unit).stdout.strip()


def t_systemd(bin_dir):
    r = pm("build-file", os.path.join(HERE, "systemd.Containerfile"), SYSTEMD_IMAGE, timeout=1800, check_rc=False)
    if not check(r.returncode == 0, "systemd: image with systemd and the units builds"):
        print((r.stdout + r.stderr)[-4000:])
        return
    prune()
    # --systemd=always: podman mounts /run, /tmp and the cgroup tree as systemd needs. The
    # units' sandboxing (DynamicUser, ProtectSystem, PrivateTmp) makes mount namespaces:
    # CAP_SYS_ADMIN inside the container.
    c = start(SYSTEMD_IMAGE, extra=("--systemd=always", "--cap-add", "SYS_ADMIN"))
    booted = eventually(lambda: systemctl(c, "is-system-running").stdout.strip() in ("running", "degraded"), 60, 0.5)
    state = systemctl(c, "is-system-running").stdout.strip()
    if not check(booted, f"systemd: systemd boots as PID 1 in the container (state {state!r})"):
        print(logs(c)[-4000:])
        return
    systemctl(c, "start", "graceful-server.socket")
    check(systemctl(c, "is-active", "graceful-server.socket").stdout.strip() == "active",
          "systemd: graceful-server.socket is active")
    # The first connection starts the service (socket activation).
    if not check(wait_serving(c, 30), "systemd: a request through the socket starts the service and is served"):
        print(systemctl(c, "status", "graceful-server.service").stdout)
        print(pm("exec", c, "journalctl", "-u", "graceful-server", "--no-pager", check_rc=False).stdout[-4000:])
        return
    first = unit_prop(c, "MainPID")
    ka, ka_out = bench(c, bin_dir, "-c", "8")
    cl, cl_out = bench(c, bin_dir, "-c", "4", "--close")
    try:
        time.sleep(1)
        t0 = time.monotonic()
        r = systemctl(c, "reload", "graceful-server.service")
        check(r.returncode == 0, f"systemd: systemctl reload succeeds ({time.monotonic() - t0:.1f} s) {r.stderr.strip()}")
        # RELOADING=1 ... READY=1 with MAINPID=: the new process is the main one once it serves.
        eventually(lambda: unit_prop(c, "MainPID") not in ("0", first) and unit_prop(c, "ActiveState") == "active", 30)
        after_reload = unit_prop(c, "MainPID")
        check(after_reload not in ("0", first), f"systemd: reload upgraded in place: MainPID {first} -> {after_reload}")
        time.sleep(1)
        t0 = time.monotonic()
        r = systemctl(c, "restart", "graceful-server.service")
        check(r.returncode == 0, f"systemd: systemctl restart succeeds ({time.monotonic() - t0:.1f} s) {r.stderr.strip()}")
        after_restart = unit_prop(c, "MainPID")
        check(after_restart not in ("0", after_reload), f"systemd: restart started a new process: MainPID {after_restart}")
        time.sleep(1)
        # Reload again, so that the stop below stops an upgraded main process (one systemd did
        # not start: the case where KillMode=mixed alone SIGKILLs at once).
        r = systemctl(c, "reload", "graceful-server.service")
        eventually(lambda: unit_prop(c, "MainPID") not in ("0", after_restart) and unit_prop(c, "ActiveState") == "active", 30)
        last = unit_prop(c, "MainPID")
        check(r.returncode == 0 and last not in ("0", after_restart), f"systemd: second reload: MainPID {after_restart} -> {last}")
        time.sleep(1)
    finally:
        ka_res, ka_text = bench_result(ka, ka_out)
        cl_res, cl_text = bench_result(cl, cl_out)
    for name, res, text in (("keep-alive", ka_res, ka_text), ("close", cl_res, cl_text)):
        failed = res["failures"]["total"]
        check(res["ok"] > 0 and failed == 0,
              f"systemd: reload, restart, reload under {name} load: {res['ok']} ok, {failed} failed")
        if failed:
            print(text[-3000:])
        figure(f"systemd in a container, systemctl reload + restart + reload, graceful-bench {name} "
               f"-c {res['options']['connections']}: {failed} failed of {res['requests']}")
    # systemctl stop drains: a request in flight is answered, the service ends cleanly.
    slow = subprocess.Popen(netns(c) + ["curl", "-s", "-m", "30", "-o", "/dev/null", "-w", "%{http_code}",
                                        "http://127.0.0.1:8080/slow?ms=2000"], stdout=subprocess.PIPE, text=True)

    def in_flight():
        code, body = curl(c, "/metrics")
        m = re.search(r"^graceful_http_in_flight_requests (\d+)", body, re.M)
        return code == 200 and m is not None and int(m.group(1)) >= 1
    check(eventually(in_flight, 10), "systemd: a request in flight before systemctl stop")
    r = systemctl(c, "stop", "graceful-server.service")
    code = slow.communicate(timeout=30)[0]
    check(r.returncode == 0 and code == "200", f"systemd: systemctl stop answers the request in flight (got {code})")
    result, status = unit_prop(c, "Result"), unit_prop(c, "ExecMainStatus")
    check(result == "success" and status == "0", f"systemd: stopped cleanly (Result={result}, ExecMainStatus={status})")
    if failures:
        print(pm("exec", c, "journalctl", "-u", "graceful-server", "--no-pager", check_rc=False).stdout[-5000:])


TESTS = {"build": t_build, "serve": t_serve, "stop": t_stop, "dump": t_dump, "kubernetes": t_kubernetes,
         "supervised": t_supervised, "systemd": t_systemd}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in TESTS:
        print(__doc__)
        return 2
    bin_dir, name = sys.argv[1], sys.argv[2]
    ci = os.environ.get("CI", "") not in ("", "0", "false")
    if not shutil.which("podman") or not podman_usable():
        if ci:
            print("FAIL podman cannot run containers here, and CI is set: the container tests must run")
            return 1
        print("SKIP podman cannot run containers here (set CI=1 to make this a failure)")
        return SKIP
    if name != "build":
        for tag in (IMAGE, SUPERVISED):
            if pm("image", "exists", tag, check_rc=False).returncode != 0:
                print(f"FAIL image {tag} missing: container.build must run first")
                return 1
    try:
        TESTS[name](bin_dir)
    except Exception as e:  # a podman error is a failure with its message, not a traceback only
        check(False, f"{name}: {e}")
    finally:
        cleanup()
    print(f"container {name}: {len(failures)} failed" if failures else f"container {name}: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
