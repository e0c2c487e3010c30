#!/usr/bin/env python3
"""hawser's benchmark harness (issue 9). Run it through `scripts/bench`.

It brings up the test control plane (tests/env/up, in its own state dir), a test
Git server (tests/env/gitserver.py), runs the scenarios below against a release
build of hawser and writes bench/results/<date>.json (every raw sample) and .md
(the tables). Benchmarks are not tests: nothing here passes or fails on a time;
the harness fails only when a step of it breaks (a command exits non-zero, an
object never shows up). `--smoke` runs every scenario at a tiny size so the
test suite (tests/bench_smoke.rs) keeps the harness from rotting.

Scenarios, one function each (`scenario_*`):
  memory   RSS of `hawser run` over N drift intervals, for each object count; binary size
  apply    first and no-op apply of N objects: hawser vs kubectl --server-side --prune --applyset
  change   one object changed among N: time and writes, hawser vs kubectl
  poll     bytes on the wire per unchanged poll: hawser ls-refs vs git ls-remote; tarball
  latency  commit pushed -> object visible, polling vs webhook
  fetch    time and peak RSS: hawser fetch vs git clone --depth 1
  fleet    N simulated agents polling one server: server CPU, bytes, p50/p99 (bench/fleet.py)
  flux     optional: Flux source- and kustomize-controller RSS for the same N objects
  render   time and peak RSS: hawser render vs kustomize build, 1,000-object overlay
           with patches (scripts/bench-render)

Competitors are run A B A B ... so machine drift cancels out; ratios are taken
pair by pair. Writes are counted from the API server's audit log by user name,
between two marker requests.
"""

import argparse
import base64
import datetime
import glob
import hashlib
import hmac
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from report import kib, machine, markdown, summary_table, versions  # noqa: F401 (kib: flux.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def log(msg):
    print(f"bench [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A step of the harness failed (not a slow result: those are only reported)."""


def run(cmd, *, env=None, cwd=None, input=None, check=True, capture=True):
    """Runs a command; raises BenchError with its stderr when it fails."""
    p = subprocess.run(
        cmd, env=env, cwd=cwd, input=input, capture_output=capture, text=True
    )
    if check and p.returncode != 0:
        raise BenchError(
            f"{' '.join(map(str, cmd))} exited {p.returncode}: {(p.stderr or '').strip()[-2000:]}"
        )
    return p


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def wait_until(what, timeout, check, period=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(period)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- processes


def read_status(pid):
    """VmRSS and VmHWM of a process in KiB (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def read_smaps_rollup(pid):
    """KiB fields of /proc/<pid>/smaps_rollup (Rss, Anonymous, ...)."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def count_threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


class RssSampler(threading.Thread):
    """Samples VmRSS (of the process, or of its whole tree) every `period` seconds."""

    def __init__(self, pid, period=0.2, tree=False):
        super().__init__(daemon=True)
        self.pid, self.period, self.tree = pid, period, tree
        self.samples = []  # (monotonic time, RSS KiB)
        self.hwm_kib = 0  # VmHWM of the process itself
        self.hwm_by_pid = {}  # VmHWM of every process of the tree seen
        self.stopped = threading.Event()
        self.start()

    def run(self):
        while not self.stopped.is_set():
            pids = descendants(self.pid) if self.tree else [self.pid]
            total, alive = 0, False
            for p in pids:
                st = read_status(p)
                if st and "VmRSS" in st:
                    alive = True
                    total += st["VmRSS"]
                    hwm = max(self.hwm_by_pid.get(p, 0), st.get("VmHWM", 0))
                    self.hwm_by_pid[p] = hwm
                    if p == self.pid:
                        self.hwm_kib = hwm
            if alive:
                self.samples.append((time.monotonic(), total))
            self.stopped.wait(self.period)

    def stop(self):
        self.stopped.set()
        self.join()

    def between(self, t0, t1):
        return [kib for t, kib in self.samples if t0 <= t <= t1]


def timed_with_rss(cmd, env=None, cwd=None):
    """Runs cmd to completion: (seconds, largest process's peak RSS KiB, sampled peak
    of the whole process tree KiB, stdout). The largest-process peak is the highest
    VmHWM seen in the tree. Not wait4's ru_maxrss: it would include the Python
    harness's own RSS, which the child carries from fork until exec."""
    t0 = time.monotonic()
    p = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    sampler = RssSampler(p.pid, period=0.02, tree=True)
    out_chunks = []
    reader = threading.Thread(target=lambda: out_chunks.append(p.stdout.read()))
    err_chunks = []
    ereader = threading.Thread(target=lambda: err_chunks.append(p.stderr.read()))
    reader.start()
    ereader.start()
    _, status, rusage = os.wait4(p.pid, 0)
    elapsed = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    reader.join()
    ereader.join()
    if p.returncode != 0:
        raise BenchError(
            f"{' '.join(cmd)} exited {p.returncode}: {err_chunks[0].decode(errors='replace')[-2000:]}"
        )
    tree_peak = max((kib for _, kib in sampler.samples), default=None)
    return elapsed, max(sampler.hwm_by_pid.values(), default=None), tree_peak, out_chunks[0].decode(errors="replace")


# ---------------------------------------------------------------- Kubernetes


class Cluster:
    """The test control plane: admin API access, kubectl, the audit log."""

    def __init__(self, env):
        self.env = env
        self.server = env["HAWSER_TEST_APISERVER"]
        self.audit_path = env["HAWSER_TEST_AUDIT_LOG"]
        with open(env["HAWSER_TEST_ADMIN_KUBECONFIG"]) as f:
            self.token = re.search(r"token:\s*(\S+)", f.read()).group(1)
        self.ssl = ssl.create_default_context(cafile=env["HAWSER_TEST_CA"])
        self.kubectl_bin = os.path.join(env["HAWSER_TEST_BIN"], "kubectl")
        # Markers are searched for from here on: the log only grows.
        self.audit_pos = self.audit_size()

    def api(self, method, path, body=None, ctype="application/json"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, None

    def get(self, path):
        status, obj = self.api("GET", path)
        return obj if status == 200 else None

    def kubectl(self, *args, input=None, kubeconfig=None, check=True):
        env = dict(self.env)
        env["KUBECONFIG"] = kubeconfig or self.env["HAWSER_TEST_ADMIN_KUBECONFIG"]
        return run([self.kubectl_bin, *args], env=env, input=input, check=check)

    def audit_mark(self):
        """A marker request, waited for in the audit log: every request that returned
        before it is then in the log. Returns the log offset just past the marker."""
        name = "bench-mark-%08x" % random.getrandbits(32)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
        status, _ = self.api("POST", "/api/v1/namespaces/default/configmaps", body)
        if status != 201:
            raise BenchError(f"creating audit marker {name}: HTTP {status}")

        # Read on from the last marker, only what is new each time: under load the
        # log grows by a hundred megabytes between two markers.
        pos, tail, needle = self.audit_pos, b"", name.encode()

        def find():
            nonlocal pos, tail
            data = self.audit_read(pos)
            pos += len(data)
            # Keep the unfinished last line: the marker may be split across reads.
            base = pos - len(data) - len(tail)
            data, cut = tail + data, (tail + data).rfind(b"\n") + 1
            i = data.find(needle, 0, cut)
            tail = data[cut:]
            return base + data.index(b"\n", i) + 1 if i >= 0 else None

        offset = wait_until("the audit log to show the marker", 180, find, 0.1)
        self.audit_pos = offset
        self.api("DELETE", f"/api/v1/namespaces/default/configmaps/{name}")
        return offset

    def audit_files(self):
        """The audit log as the API server rotates it (at 100 MB): the rotated files,
        oldest first (their names carry the time), then the live one. Offsets in the
        harness are offsets into this concatenation."""
        base, ext = os.path.splitext(self.audit_path)
        rotated = sorted(glob.glob(f"{glob.escape(base)}-*{ext}"))
        return rotated + [self.audit_path]

    def audit_size(self):
        return sum(os.path.getsize(f) for f in self.audit_files())

    def audit_read(self, start, end=None):
        """Bytes [start, end) of the concatenated audit log."""
        out, offset = [], 0
        for path in self.audit_files():
            size = os.path.getsize(path)
            lo, hi = max(start - offset, 0), size if end is None else min(end - offset, size)
            if hi > lo:
                with open(path, "rb") as f:
                    f.seek(lo)
                    out.append(f.read(hi - lo))
            offset += size
        return b"".join(out)

    def audit_events(self, user, start, end):
        """`user`'s completed requests between two offsets: (received, completed, verb, uri)."""
        data = self.audit_read(start, end)
        out = []
        for line in data.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("user", {}).get("username") != user or e.get("stage") != "ResponseComplete":
                continue
            out.append((parse_ts(e["requestReceivedTimestamp"]), parse_ts(e["stageTimestamp"]),
                        e.get("verb"), e.get("requestURI", "")))
        return sorted(out)

    def audit_count(self, user, start, end):
        """Requests `user` made between two markers: writes (no dry runs), dry runs, all."""
        data = self.audit_read(start, end)
        writes = dry = total = 0
        by_verb = {}
        for line in data.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("user", {}).get("username") != user:
                continue
            if e.get("stage") != "ResponseComplete":
                continue
            total += 1
            verb = e.get("verb")
            if verb in WRITE_VERBS:
                if "dryRun=" in e.get("requestURI", ""):
                    dry += 1
                else:
                    writes += 1
                    by_verb[verb] = by_verb.get(verb, 0) + 1
        return {"writes": writes, "dry_runs": dry, "requests": total, "writes_by_verb": by_verb}


def parse_ts(text):
    """RFC 3339 with microseconds, as the audit log writes it, to Unix seconds."""
    return datetime.datetime.strptime(text.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def bursts(events, gap=1.0):
    """Splits requests into bursts (one reconcile each) separated by `gap` seconds of
    silence: for each, its span, request count, writes, and the time the API server
    spent serving (the rest of the span is the client's own time and round trips)."""
    groups = []
    for ev in events:
        if groups and ev[0] - groups[-1][-1][1] <= gap:
            groups[-1].append(ev)
        else:
            groups.append([ev])
    out = []
    for g in groups:
        writes = sum(1 for e in g if e[2] in WRITE_VERBS and "dryRun=" not in e[3])
        out.append({
            "end": max(e[1] for e in g),
            "span_s": round(max(e[1] for e in g) - g[0][0], 3),
            "requests": len(g),
            "writes": writes,
            "written": [e[3] for e in g if e[2] in WRITE_VERBS and "dryRun=" not in e[3]][:5],
            "server_s": round(sum(e[1] - e[0] for e in g), 3),
        })
    return out


def parse_agent_rules():
    """AGENT_RULES from tests/support/cluster.rs: the Role hawser's install grants."""
    with open(os.path.join(ROOT, "tests/support/cluster.rs")) as f:
        text = f.read()
    block = re.search(r"pub const AGENT_RULES: &\[&str\] = &\[(.*?)\];", text, re.S)
    if not block:
        raise BenchError("AGENT_RULES not found in tests/support/cluster.rs")
    return re.findall(r'"([^"]+)"', block.group(1))


def role_rules_yaml(rules):
    out = []
    for rule in rules:
        verbs, _, resources = rule.partition(":")
        groups = {}
        for res in resources.split(","):
            name, _, group = res.partition(".")
            groups.setdefault(group, []).append(name)
        for group, names in groups.items():
            out.append(
                f'- apiGroups: ["{group}"]\n  resources: {json.dumps(names)}\n  verbs: {json.dumps(verbs.split(","))}'
            )
    return "\n".join(out)


class Tenant:
    """A home namespace (inventory parent, ServiceAccounts) and object namespaces.
    Every ServiceAccount gets AGENT_RULES in every namespace, and a kubeconfig."""

    def __init__(self, bench, prefix, n_namespaces, sas=("hawser",)):
        self.bench, self.cluster = bench, bench.cluster
        self.home = f"{prefix}-home"
        self.namespaces = [f"{prefix}-{i}" for i in range(n_namespaces)]
        self.kubeconfigs = {}
        rules = bench.agent_rules
        for sa in sas:
            path = os.path.join(bench.work, f"{prefix}-{sa}.kubeconfig")
            run(
                [os.path.join(ROOT, "tests/env/sa-kubeconfig"), "-o", path, self.home, sa, *rules],
                env=bench.env,
            )
            self.kubeconfigs[sa] = path
        subjects = "\n".join(
            f"- kind: ServiceAccount\n  name: {sa}\n  namespace: {self.home}" for sa in sas
        )
        docs = []
        for ns in self.namespaces:
            docs.append(
                f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n"
                f"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: bench-agent\n  namespace: {ns}\nrules:\n{role_rules_yaml(rules)}\n---\n"
                f"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: bench-agent\n  namespace: {ns}\n"
                f"roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: bench-agent\nsubjects:\n{subjects}\n"
            )
        if docs:
            self.cluster.kubectl("apply", "-f", "-", input="---\n".join(docs))
        bench.tenants.append(self)

    def user(self, sa="hawser"):
        return f"system:serviceaccount:{self.home}:{sa}"

    def delete(self):
        """Deletes the namespaces and waits: a background deletion of thousands of
        objects would load the control plane during the next measurement."""
        if self in self.bench.tenants:
            self.bench.tenants.remove(self)
        names = [self.home, *self.namespaces]
        self.cluster.kubectl(
            "delete", "namespace", *names, "--ignore-not-found", "--wait=true", "--timeout=600s",
            check=False,
        )


# ---------------------------------------------------------------- workload


def gen_objects(n, namespaces, variant=None):
    """n objects (path -> YAML): ConfigMaps 40 %, Secrets 20 %, headless Services
    20 %, Deployments 20 % (replicas 0: no pods, see the note), spread round-robin
    over `namespaces`. `variant` = (index, value) changes one object's data."""
    files = {}
    for i in range(n):
        ns = namespaces[i % len(namespaces)]
        kind = ("cm", "cm", "secret", "svc", "deploy")[i % 5]
        name = f"obj-{i:05d}"
        value = f"value-{i}"
        if variant and variant[0] == i:
            value = variant[1]
        labels = f"    app: {name}\n    bench.hawser.dev/tier: t{i % 7}\n"
        if kind == "cm":
            doc = (
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n{labels}"
                f"data:\n  value: {value}\n  settings.conf: |\n    listen = 0.0.0.0:8080\n    workers = {i % 8 + 1}\n    name = {name}\n"
            )
        elif kind == "secret":
            b64 = base64.b64encode(f"{value}-{'s' * 24}".encode()).decode()
            doc = (
                f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n{labels}"
                f"type: Opaque\ndata:\n  token: {b64}\n"
            )
        elif kind == "svc":
            doc = (
                f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n{labels}"
                f"  annotations:\n    bench.hawser.dev/value: {value}\n"
                f"spec:\n  clusterIP: None\n  selector:\n    app: {name}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"
            )
        else:
            doc = (
                f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n{labels}"
                f"  annotations:\n    bench.hawser.dev/value: {value}\n"
                f"spec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n"
                f"    spec:\n      containers:\n      - name: app\n        image: registry.invalid/bench:1.0\n        ports:\n        - containerPort: 8080\n"
            )
        files[f"{ns}/{kind}-{name}.yaml"] = doc
    return files


def pack(files, most=5000):
    """The same documents in at most `most` files (multi-document YAML, files of one
    directory together): hawser loads at most 10,000 manifest files
    (manifests::Limits::max_files, not a flag), and 20,000 objects would be 20,000."""
    if len(files) <= most:
        return files
    per = -(-len(files) // most)
    out, batch = {}, []

    def flush():
        if batch:
            out[batch[0][0]] = "---\n".join(doc for _, doc in batch)
            batch.clear()

    for path, doc in sorted(files.items()):
        if batch and (len(batch) == per or os.path.dirname(batch[0][0]) != os.path.dirname(path)):
            flush()
        batch.append((path, doc))
    flush()
    return out


def n_namespaces(n):
    return max(2, min(10, n // 250))


def write_tree(dir, files):
    if os.path.exists(dir):
        shutil.rmtree(dir)
    for path, text in files.items():
        full = os.path.join(dir, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)


# ---------------------------------------------------------------- Git


def git_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="hawser bench",
        GIT_AUTHOR_EMAIL="bench@hawser.invalid",
        GIT_COMMITTER_NAME="hawser bench",
        GIT_COMMITTER_EMAIL="bench@hawser.invalid",
        LC_ALL="C",
    )
    return env


def git(*args, cwd=None, input=None):
    return run(["git", *args], env=git_env(), cwd=cwd, input=input).stdout


class GitServer:
    """tests/env/gitserver.py on loopback, with its per-request byte log."""

    def __init__(self, work):
        self.root = os.path.join(work, "git-repos")
        self.files = os.path.join(work, "git-files")
        self.log_path = os.path.join(work, "gitserver.log")
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.files, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable, os.path.join(ROOT, "tests/env/gitserver.py"),
                "--root", self.root, "--files", self.files, "--port", "0",
                "--log", self.log_path, "--exit-with-stdin",
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(os.path.join(work, "gitserver.stderr"), "w"), text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("PORT="):
            raise BenchError(f"gitserver.py did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line[5:])}"

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def log_offset(self):
        return os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0

    def requests(self, start, contains=""):
        """Parsed log lines after `start`: (method, target, status, req bytes, resp bytes)."""
        with open(self.log_path) as f:
            f.seek(start)
            lines = f.read().splitlines()
        out = []
        for line in lines:
            parts = line.split()
            if len(parts) >= 5 and contains in parts[1]:
                out.append((parts[0], parts[1], int(parts[2]), int(parts[3]), int(parts[4])))
        return out

    def repo(self, name):
        return GitRepo(self, name)


class GitRepo:
    """A bare repository served by the GitServer and a work tree that pushes to it
    by path (pushes are not what is measured)."""

    def __init__(self, server, name):
        self.server, self.name = server, name
        self.bare = os.path.join(server.root, f"{name}.git")
        self.work = os.path.join(os.path.dirname(server.root), "work-" + name)
        git("init", "-q", "--bare", "--initial-branch=main", self.bare)
        git("init", "-q", "--initial-branch=main", self.work)
        self.url = f"{server.url}/{name}.git"

    def commit_tree(self, files, message):
        """Replaces the work tree with `files`, commits, pushes; returns the commit id."""
        for entry in os.listdir(self.work):
            if entry != ".git":
                shutil.rmtree(os.path.join(self.work, entry))
        write_tree_into(self.work, files)
        return self._commit(message)

    def write_file(self, path, text, message):
        write_tree_into(self.work, {path: text})
        return self._commit(message)

    def _commit(self, message):
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "-q", self.bare, "main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work).strip()


def write_tree_into(dir, files):
    for path, text in files.items():
        full = os.path.join(dir, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)


# ---------------------------------------------------------------- hawser run


class Agent:
    """`hawser run` as a child process under a scoped ServiceAccount."""

    def __init__(self, bench, tenant, source, extra=()):
        self.bench = bench
        self.port = free_port()
        self.cache = tempfile.mkdtemp(prefix="cache-", dir=bench.work)
        self.log_path = os.path.join(bench.work, f"agent-{self.port}.log")
        args = [
            bench.hawser, "run", "--source", source, "--namespace", tenant.home,
            "--cache-dir", self.cache, "--listen", f"127.0.0.1:{self.port}",
            "--health-timeout", "60s",
        ]
        if tenant.namespaces:
            args += ["--allow-namespaces", ",".join(tenant.namespaces)]
        args += list(extra)
        env = {k: v for k, v in bench.env.items() if not k.startswith("HAWSER_")}
        env.update(KUBECONFIG=tenant.kubeconfigs["hawser"], RUST_LOG="info", NO_COLOR="1")
        self.logf = open(self.log_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf
        )
        self.rss = RssSampler(self.proc.pid)
        bench.agents.append(self)

    def metrics(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                try:
                    out[key] = float(value)
                except ValueError:
                    pass
        return out

    def applied(self, revision):
        if self.proc.poll() is not None:
            raise BenchError(f"hawser run exited {self.proc.returncode}; log: {self.log_path}\n{self.tail()}")
        m = self.metrics()
        if m.get('hawser_reconciles_total{result="rejected"}', 0) > 0:
            raise BenchError(f"hawser rejected a revision; log: {self.log_path}\n{self.tail()}")
        if revision is None:
            return m.get('hawser_reconciles_total{result="success"}', 0) >= 1
        return m.get(f'hawser_applied_revision_info{{revision="{revision}"}}') == 1

    def wait_applied(self, revision, timeout):
        try:
            wait_until(f"hawser to apply {(revision or 'the source')[:12]}", timeout, lambda: self.applied(revision), 0.1)
        except BenchError as e:
            raise BenchError(f"{e}; agent log tail:\n{self.tail()}") from None

    def hook(self, secret, body):
        sig = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/hook", data=body, method="POST",
            headers={"X-Hub-Signature-256": sig, "X-GitHub-Event": "push",
                     "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status // 100 != 2:
                raise BenchError(f"POST /hook answered {r.status}")

    def tail(self, n=15):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self in self.bench.agents:
            self.bench.agents.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.rss.stop()
        self.logf.close()


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="hawser-bench-")
        self.run_id = "%04x" % random.getrandbits(16)
        self.tenants, self.agents = [], []
        self.env = None
        self.started_env = False
        self.results = {}
        self.notes = []

    # -- setup

    def hawser_binary(self):
        if self.args.hawser:
            return os.path.abspath(self.args.hawser)
        path = os.path.join(ROOT, "target/release/hawser")
        if not os.path.exists(path):
            log("building hawser in release mode (LTO: slow, once)")
            t0 = time.monotonic()
            run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, capture=False)
            self.notes.append(f"`cargo build --release` took {time.monotonic() - t0:.0f} s on this machine.")
        return path

    def up(self):
        if self.args.reuse_env:
            if "HAWSER_TEST_APISERVER" not in os.environ:
                raise BenchError('--reuse-env needs the exports of tests/env/up: eval "$(tests/env/up)"')
            self.env = dict(os.environ)
        else:
            state = self.args.env_state
            env = dict(os.environ, HAWSER_TESTENV_STATE=state)
            log(f"starting the test control plane in {state}")
            out = run(
                ["bash", "-c", 'eval "$(tests/env/up)" && env -0'], env=env, cwd=ROOT
            ).stdout
            self.env = dict(kv.split("=", 1) for kv in out.split("\0") if "=" in kv)
            self.started_env = True
        self.cluster = Cluster(self.env)
        self.agent_rules = parse_agent_rules()
        self.git = GitServer(self.work)
        self.hawser = self.hawser_binary()

    def down(self):
        for agent in list(self.agents):
            agent.stop()
        for tenant in list(self.tenants):
            tenant.delete()
        if getattr(self, "git", None):
            self.git.stop()
        if self.started_env and not self.args.keep_env:
            run([os.path.join(ROOT, "tests/env/down")], env=self.env, check=False)
        if not self.args.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)

    def prefix(self, scenario, *parts):
        return "-".join(["hb", self.run_id, scenario, *map(str, parts)])

    # -- scenario 1

    def scenario_memory(self):
        """Peak and steady RSS of `hawser run` with N objects through D drift intervals."""
        a = self.args
        rows, unapplied = [], []
        for n in a.memory_sizes:
            for sample in range(a.samples_memory):
                tenant = Tenant(self, self.prefix("mem", n, sample), n_namespaces(n))
                repo = self.git.repo(self.prefix("mem", n, sample))
                rev = repo.commit_tree(pack(gen_objects(n, tenant.namespaces)), f"{n} objects")
                agent = Agent(self, tenant, repo.url, [
                    "--ref", "main", "--interval", "60s",
                    "--drift-interval", f"{a.drift_interval}s",
                ])
                log(f"memory: {n} objects, sample {sample + 1}: waiting for the first apply")
                try:
                    agent.wait_applied(rev, a.apply_timeout)
                except BenchError as e:
                    # A size hawser cannot apply (20,000 objects outgrow the inventory
                    # parent's 1 MiB today) is a result, not the end of the run.
                    reason = str(e).splitlines()[0]
                    log(f"memory: {n} objects: not applied: {reason}")
                    unapplied.append({"objects": n, "sample": sample, "error": reason,
                                      "log_tail": agent.tail()})
                    agent.stop()
                    tenant.delete()
                    continue
                t_applied = time.monotonic()
                first_apply_s = t_applied - agent.started

                hwm_after_apply = agent.rss.hwm_kib
                a0 = self.cluster.audit_mark()
                window = a.drift_interval * a.drift_ticks
                log(f"memory: {n} objects: {a.drift_ticks} drift intervals ({window} s)")
                time.sleep(window)
                t_end = time.monotonic()
                smaps = read_smaps_rollup(agent.proc.pid)
                threads = count_threads(agent.proc.pid)
                steady = agent.rss.between(t_applied, t_end)
                wall_end = time.time()
                agent.stop()
                a1 = self.cluster.audit_mark()
                # The drift checks, one burst of requests each, from the audit log (the
                # agent does not time a drift check that finds nothing). They start with
                # the first dry run: before it come the first reconcile's status writes.
                # A check still running at the end is cut short, so it is left out.
                events = self.cluster.audit_events(tenant.user(), a0, a1)
                first = next((i for i, e in enumerate(events) if "dryRun=" in e[3]), len(events))
                drift = [b for b in bursts(events[first:]) if b["end"] < wall_end - 1.0]
                rows.append({
                    "objects": n,
                    "sample": sample,
                    "namespaces": len(tenant.namespaces),
                    "first_apply_s": round(first_apply_s, 3),
                    "peak_rss_kib": agent.rss.hwm_kib,
                    "peak_rss_during_first_apply_kib": hwm_after_apply,
                    "steady_rss_median_kib": median(steady),
                    "steady_rss_max_kib": max(steady, default=None),
                    "steady_rss_last_kib": steady[-1] if steady else None,
                    "rss_samples_kib": steady,
                    "rss_anon_kib": smaps.get("Anonymous"),
                    "rss_file_kib": smaps.get("Rss", 0) - smaps.get("Anonymous", 0) if smaps else None,
                    "threads": threads,
                    "drift_reconciles": len(drift),
                    "drift_reconcile_median_s": median([b["span_s"] for b in drift]),
                    "drift_writes": sum(b["writes"] for b in drift),
                    "drift_bursts": drift,
                })
                tenant.delete()
        medians = {}
        for n in a.memory_sizes:
            mine = [r for r in rows if r["objects"] == n]
            if not mine:
                continue
            medians[str(n)] = {
                k: median([r[k] for r in mine])
                for k in ("first_apply_s", "peak_rss_kib", "steady_rss_median_kib", "rss_anon_kib",
                          "drift_reconcile_median_s", "drift_writes")
            }
        size = os.path.getsize(self.hawser)
        stripped = os.path.join(self.work, "hawser.stripped")
        shutil.copy(self.hawser, stripped)
        stripped_ok = run(["strip", stripped], check=False).returncode == 0
        self.results["memory"] = {
            "config": {"sizes": a.memory_sizes, "drift_interval_s": a.drift_interval,
                       "drift_ticks": a.drift_ticks, "samples": a.samples_memory,
                       "rss_sample_period_s": 0.2},
            "binary": {"path": os.path.relpath(self.hawser, ROOT), "bytes": size,
                       "stripped_bytes": os.path.getsize(stripped) if stripped_ok else None},
            "samples": rows,
            "medians": medians,
            "unapplied": unapplied,
        }

    # -- scenarios 2 and 3: hawser and kubectl side by side

    def competitor_apply(self, who, tenant, dir, kubectl_cache):
        """One apply of `dir` by hawser or kubectl (both as their ServiceAccount)."""
        if who == "hawser":
            env = {k: v for k, v in self.env.items() if not k.startswith("HAWSER_")}
            env.update(KUBECONFIG=tenant.kubeconfigs["hawser"], NO_COLOR="1")
            cmd = [self.hawser, "apply", "--once", "--dir", dir, "--namespace", tenant.home]
        else:
            env = dict(self.env, KUBECONFIG=tenant.kubeconfigs["kubectl"], KUBECTL_APPLYSET="true")
            # A namespaced ApplySet needs -n, and under -n kubectl refuses objects of
            # other namespaces: so both competitors work in one namespace here.
            cmd = [self.cluster.kubectl_bin, "apply", "-n", tenant.home, "--server-side", "--prune",
                   "--applyset=configmaps/kubectl-bench", "--field-manager=kubectl-bench",
                   "--cache-dir", kubectl_cache, "-R", "-f", dir]
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        outs = []
        readers = [threading.Thread(target=lambda s=s: outs.append(s.read())) for s in (p.stdout, p.stderr)]
        for r in readers:
            r.start()
        _, status, ru = os.wait4(p.pid, 0)
        elapsed = time.monotonic() - t0
        for r in readers:
            r.join()
        p.returncode = os.waitstatus_to_exitcode(status)
        text = b"".join(outs).decode(errors="replace")
        if p.returncode != 0:
            raise BenchError(f"{' '.join(cmd)} exited {p.returncode}: {text[-2000:]}")
        self.last_cpu_s = round(ru.ru_utime + ru.ru_stime, 3)
        return elapsed, text

    def pairs(self, samples):
        """A B A B ...: (pair index, competitor) in run order."""
        for k in range(samples):
            for who in ("hawser", "kubectl"):
                yield k, who

    def warm_kubectl(self, tenant, cache):
        # kubectl caches discovery on disk; warm it so no sample pays for it alone.
        env = dict(self.env, KUBECONFIG=tenant.kubeconfigs["kubectl"])
        run([self.cluster.kubectl_bin, "api-resources", "--cache-dir", cache], env=env, check=False)

    def scenario_apply(self):
        """First apply and no-op re-apply of N objects, hawser vs kubectl."""
        a = self.args
        n = a.objects
        kubectl_cache = os.path.join(self.work, "kubectl-cache")
        rows = []
        for k, who in self.pairs(a.samples):
            tenant = Tenant(self, self.prefix("apply", k, who[0]), 0, sas=("hawser", "kubectl"))
            if k == 0 and who == "hawser":
                self.warm_kubectl(tenant, kubectl_cache)
            dir = os.path.join(self.work, f"apply-{k}-{who}")
            write_tree(dir, gen_objects(n, [tenant.home]))
            user = tenant.user(who)
            log(f"apply: pair {k + 1}, {who}: first apply of {n} objects")
            m0 = self.cluster.audit_mark()
            first_s, first_out = self.competitor_apply(who, tenant, dir, kubectl_cache)
            first_cpu = self.last_cpu_s
            m1 = self.cluster.audit_mark()
            noop_s, noop_out = self.competitor_apply(who, tenant, dir, kubectl_cache)
            noop_cpu = self.last_cpu_s
            m2 = self.cluster.audit_mark()
            first = self.cluster.audit_count(user, m0, m1)
            noop = self.cluster.audit_count(user, m1, m2)
            noop_server = sum(e[1] - e[0] for e in self.cluster.audit_events(user, m1, m2))
            rows.append({
                "pair": k, "competitor": who, "objects": n,
                "first_s": round(first_s, 3), "noop_s": round(noop_s, 3),
                "first_writes": first["writes"], "first_requests": first["requests"],
                "noop_writes": noop["writes"], "noop_requests": noop["requests"],
                "noop_dry_runs": noop["dry_runs"], "noop_writes_by_verb": noop["writes_by_verb"],
                "first_cpu_s": first_cpu, "noop_cpu_s": noop_cpu,
                "noop_apiserver_s": round(noop_server, 3),
                "noop_summary": noop_out.strip().splitlines()[-1:] if who == "hawser" else [],
            })
            tenant.delete()
        self.results["apply"] = self.ab_summary(
            rows, ("first_s", "noop_s", "first_writes", "noop_writes", "noop_requests"),
            ratios=("first_s", "noop_s"), config={"objects": n, "samples": a.samples},
        )

    def scenario_change(self):
        """One object changed among N: time to converged and writes, hawser vs kubectl."""
        a = self.args
        n = a.objects
        kubectl_cache = os.path.join(self.work, "kubectl-cache")
        rows = []
        for k, who in self.pairs(a.samples):
            tenant = Tenant(self, self.prefix("chg", k, who[0]), 0, sas=("hawser", "kubectl"))
            self.warm_kubectl(tenant, kubectl_cache)
            dir = os.path.join(self.work, f"change-{k}-{who}")
            write_tree(dir, gen_objects(n, [tenant.home]))
            log(f"change: pair {k + 1}, {who}: applying {n} objects, then changing one")
            self.competitor_apply(who, tenant, dir, kubectl_cache)
            write_tree(dir, gen_objects(n, [tenant.home], variant=(0, f"changed-{k}")))
            m0 = self.cluster.audit_mark()
            change_s, _ = self.competitor_apply(who, tenant, dir, kubectl_cache)
            change_cpu = self.last_cpu_s
            m1 = self.cluster.audit_mark()
            cm = self.cluster.get(f"/api/v1/namespaces/{tenant.home}/configmaps/obj-00000")
            if not cm or cm["data"]["value"] != f"changed-{k}":
                raise BenchError(f"change: {who} did not apply the changed object")
            c = self.cluster.audit_count(tenant.user(who), m0, m1)
            rows.append({
                "pair": k, "competitor": who, "objects": n, "change_s": round(change_s, 3), "cpu_s": change_cpu,
                "writes": c["writes"], "requests": c["requests"], "writes_by_verb": c["writes_by_verb"],
            })
            tenant.delete()
        self.results["change"] = self.ab_summary(
            rows, ("change_s", "writes", "requests"), ratios=("change_s",),
            config={"objects": n, "samples": a.samples},
        )

    def ab_summary(self, rows, fields, ratios, config):
        medians = {
            who: {f: median([r[f] for r in rows if r["competitor"] == who]) for f in fields}
            for who in ("hawser", "kubectl")
        }
        pair_ratios = []
        for k in sorted({r["pair"] for r in rows}):
            h = next(r for r in rows if r["pair"] == k and r["competitor"] == "hawser")
            c = next(r for r in rows if r["pair"] == k and r["competitor"] == "kubectl")
            pair_ratios.append({"pair": k, **{f: round(h[f] / c[f], 3) if c[f] else None for f in ratios}})
        return {
            "config": config, "samples": rows, "medians": medians,
            "ratios_hawser_over_kubectl": pair_ratios,
            "ratio_medians": {f: median([p[f] for p in pair_ratios]) for f in ratios},
        }

    # -- scenario 4

    def scenario_poll(self):
        """Bytes on the wire per unchanged poll."""
        a = self.args
        tenant = Tenant(self, self.prefix("poll"), 0)
        repo = self.git.repo(self.prefix("poll"))
        files = gen_objects(a.poll_objects, [tenant.home])
        rev = repo.commit_tree(files, "poll target")
        add_refs(repo.bare, rev, a.refs)
        polls = a.poll_count
        rows = []

        agent = Agent(self, tenant, repo.url, ["--ref", "main", "--interval", "1s", "--drift-interval", "1h"])
        agent.wait_applied(rev, a.apply_timeout)
        time.sleep(1.5)
        start = self.git.log_offset()
        log(f"poll: hawser git, {polls} unchanged polls")
        wait_until("hawser's polls", polls * 2 + 10, lambda: len(self.git.requests(start, repo.name)) >= polls, 0.2)
        reqs = self.git.requests(start, repo.name)[:polls]
        agent.stop()
        for r in reqs:
            rows.append({"client": "hawser git (v2 ls-refs, ref-prefix)", "requests": 1,
                         "request_bytes": r[3], "response_bytes": r[4], "bytes": r[3] + r[4],
                         "detail": f"{r[0]} {r[1]} {r[2]}"})

        for label, extra in (("git ls-remote URL refs/heads/main", ["refs/heads/main"]),
                             ("git ls-remote URL (all refs)", [])):
            for _ in range(polls):
                start = self.git.log_offset()
                git("ls-remote", repo.url, *extra)
                reqs = self.git.requests(start, repo.name)
                rows.append({"client": label, "requests": len(reqs),
                             "request_bytes": sum(r[3] for r in reqs),
                             "response_bytes": sum(r[4] for r in reqs),
                             "bytes": sum(r[3] + r[4] for r in reqs),
                             "detail": "; ".join(f"{r[0]} {r[1]} {r[2]}" for r in reqs)})

        tar_name = f"{self.prefix('poll')}.tar.gz"
        run(["git", "archive", "--format=tar.gz", "-o", os.path.join(self.git.files, tar_name), rev],
            env=git_env(), cwd=repo.bare)
        # Same namespace and inventory: the tarball agent adopts the objects.
        agent = Agent(self, tenant, f"{self.git.url}/files/{tar_name}",
                      ["--interval", "1s", "--drift-interval", "1h"])
        agent.wait_applied(None, a.apply_timeout)
        time.sleep(1.5)
        start = self.git.log_offset()
        log(f"poll: hawser tarball, {polls} unchanged polls")
        wait_until("hawser's tarball polls", polls * 2 + 10,
                   lambda: len(self.git.requests(start, tar_name)) >= polls, 0.2)
        reqs = self.git.requests(start, tar_name)[:polls]
        agent.stop()
        for r in reqs:
            rows.append({"client": "hawser tarball (conditional GET)", "requests": 1,
                         "request_bytes": r[3], "response_bytes": r[4], "bytes": r[3] + r[4],
                         "detail": f"{r[0]} {r[1]} {r[2]}"})
        tenant.delete()
        clients = list(dict.fromkeys(r["client"] for r in rows))
        self.results["poll"] = {
            "config": {"refs": a.refs, "polls": polls, "objects": a.poll_objects},
            "samples": rows,
            "medians": {c: {f: median([r[f] for r in rows if r["client"] == c])
                            for f in ("bytes", "request_bytes", "response_bytes", "requests")}
                        for c in clients},
        }

    # -- scenario 5

    def scenario_latency(self):
        """Commit pushed -> object visible, polling (interval I) vs webhook."""
        a = self.args
        n = a.latency_objects
        tenant = Tenant(self, self.prefix("lat"), n_namespaces(n))
        repo = self.git.repo(self.prefix("lat"))
        rev = repo.commit_tree(gen_objects(n, tenant.namespaces), "latency base")
        secret = b"bench-hook-secret-%d" % random.getrandbits(32)
        secret_file = os.path.join(self.work, "hook-secret")
        with open(secret_file, "wb") as f:
            f.write(secret)
        agent = Agent(self, tenant, repo.url, [
            "--ref", "main", "--interval", f"{a.poll_interval}s", "--drift-interval", "1h",
            "--hook-secret-file", secret_file,
        ])
        log(f"latency: waiting for the first apply of {n} objects")
        agent.wait_applied(rev, a.apply_timeout)
        ns = tenant.namespaces[0]
        path = f"/api/v1/namespaces/{ns}/configmaps/obj-00000"
        rows = []
        for k in range(a.latency_samples):
            for mode in ("poll", "webhook"):
                value = f"{mode}-{k}-{random.getrandbits(24)}"
                files = gen_objects(n, tenant.namespaces, variant=(0, value))
                key = next(p for p in files if p.endswith("cm-obj-00000.yaml"))
                # A poll-mode sample starts at a random phase of the poll timer.
                time.sleep(random.uniform(0, a.poll_interval) if mode == "poll" else 0.5)
                mark = self.cluster.audit_mark()
                new = repo.write_file(key, files[key], value)
                t0 = time.monotonic()
                wall0 = time.time()
                if mode == "webhook":
                    body = json.dumps({"ref": "refs/heads/main", "after": new}).encode()
                    agent.hook(secret, body)
                wait_until(f"{mode} change to become visible", a.poll_interval * 3 + 60,
                           lambda: (self.cluster.get(path) or {}).get("data", {}).get("value") == value, 0.02)
                visible_s = time.monotonic() - t0
                agent.wait_applied(new, 60)
                applied_s = time.monotonic() - t0
                # Where the time went, from the audit log: until the agent's first API
                # request (poll, fetch, verify, parse), then planning until the one write.
                events = [e for e in self.cluster.audit_events(tenant.user(), mark, self.cluster.audit_mark())
                          if e[0] >= wall0]
                first_req = min((e[0] for e in events), default=None)
                write = min((e[1] for e in events if e[2] in WRITE_VERBS and "dryRun=" not in e[3]
                             and "obj-00000" in e[3]), default=None)
                rows.append({"pair": k, "mode": mode, "objects": n,
                             "visible_s": round(visible_s, 3), "applied_s": round(applied_s, 3),
                             "to_first_api_request_s": first_req and round(first_req - wall0, 3),
                             "to_write_s": write and round(write - wall0, 3),
                             "api_requests": len(events)})
                log(f"latency: {mode} {visible_s:.2f} s")
        agent.stop()
        tenant.delete()
        self.results["latency"] = {
            "config": {"objects": n, "interval_s": a.poll_interval, "samples": a.latency_samples},
            "samples": rows,
            "medians": {m: {f: median([r[f] for r in rows if r["mode"] == m]) for f in ("visible_s", "applied_s")}
                        for m in ("poll", "webhook")},
        }

    # -- scenario 6

    def scenario_fetch(self):
        """Time and peak RSS: hawser fetch vs git clone --depth 1."""
        a = self.args
        repo = self.git.repo(self.prefix("fetch"))
        log(f"fetch: making a repository with {a.fetch_files} files and {a.fetch_history_mb} MB of history")
        make_big_repo(repo.bare, a.fetch_files, a.fetch_history_mb)
        pack_bytes = sum(
            os.path.getsize(os.path.join(dp, f))
            for dp, _, fs in os.walk(os.path.join(repo.bare, "objects")) for f in fs
        )
        rows = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("HAWSER_")}
        for k, who in (p for k in range(a.samples) for p in ((k, "hawser fetch"), (k, "git clone --depth 1"))):
            out = os.path.join(self.work, f"fetch-{k}-{who.split()[0]}")
            shutil.rmtree(out, ignore_errors=True)
            start = self.git.log_offset()
            if who == "hawser fetch":
                cmd = [self.hawser, "fetch", "--source", repo.url, "--ref", "main", "--out", out]
                secs, maxrss, tree, _ = timed_with_rss(cmd, env=env)
            else:
                cmd = ["git", "clone", "-q", "--depth", "1", "--branch", "main", repo.url, out]
                secs, maxrss, tree, _ = timed_with_rss(cmd, env=git_env())
            reqs = self.git.requests(start, repo.name)
            nfiles = sum(len(fs) for dp, _, fs in os.walk(out) if "/.git" not in dp + "/")
            rows.append({"pair": k, "competitor": who, "seconds": round(secs, 3),
                         "peak_rss_kib": maxrss, "peak_tree_rss_kib": tree,
                         "wire_bytes": sum(r[3] + r[4] for r in reqs), "files": nfiles})
            log(f"fetch: {who}: {secs:.2f} s, peak RSS {maxrss / 1024:.1f} MiB")
            shutil.rmtree(out, ignore_errors=True)
        pair_ratios = []
        for k in range(a.samples):
            h = next(r for r in rows if r["pair"] == k and r["competitor"] == "hawser fetch")
            g = next(r for r in rows if r["pair"] == k and r["competitor"] == "git clone --depth 1")
            pair_ratios.append({"pair": k, "seconds": round(h["seconds"] / g["seconds"], 3),
                                "peak_rss_kib": round(h["peak_rss_kib"] / g["peak_rss_kib"], 3)})
        self.results["fetch"] = {
            "config": {"files": a.fetch_files, "history_mb": a.fetch_history_mb,
                       "repo_object_bytes": pack_bytes, "samples": a.samples},
            "samples": rows,
            "medians": {w: {f: median([r[f] for r in rows if r["competitor"] == w])
                            for f in ("seconds", "peak_rss_kib", "peak_tree_rss_kib", "wire_bytes", "files")}
                        for w in ("hawser fetch", "git clone --depth 1")},
            "ratios_hawser_over_git": pair_ratios,
            "ratio_medians": {f: median([p[f] for p in pair_ratios]) for f in ("seconds", "peak_rss_kib")},
        }

    # -- scenario 7

    def scenario_flux(self):
        """Optional peer: see bench/flux.py; records why it did not run otherwise."""
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        # flux.py imports this module as `harness`: let it be this very module, so
        # its BenchError is the one main() catches.
        sys.modules.setdefault("harness", sys.modules[__name__])
        import flux  # noqa: E402  (optional, kept apart from the main harness)

        self.results["flux"] = flux.measure(self)

    def scenario_fleet(self):
        """N simulated agents against one server: see bench/fleet.py."""
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        sys.modules.setdefault("harness", sys.modules[__name__])
        import fleet  # noqa: E402  (kept apart from the main harness)

        self.results["fleet"] = fleet.measure(self)


    # -- scenario 8

    def scenario_render(self):
        """hawser render vs kustomize build on scripts/bench-render's overlay."""
        a = self.args
        tools = os.environ.get("HAWSER_TEST_TOOLS") or run(
            [os.path.join(ROOT, "tests/env/build-tools")]).stdout.strip().splitlines()[-1]
        kustomize = os.path.join(tools, "kustomize")
        env = dict(os.environ, PATCHES="1", BASE_SIZE=str(a.render_base_size),
                   EXTRA=str(a.render_extra))
        rows = []
        for k in range(a.samples):
            out = run([os.path.join(ROOT, "scripts/bench-render"), self.hawser, kustomize, "1"],
                      env=env).stdout
            objects = int(re.search(r"^objects: (\d+)", out, re.M).group(1))
            for who, label in (("hawser render", "hawser render"), ("kustomize build", "kustomize build")):
                m = re.search(rf"^{label}: +([\d.]+)s +(\d+) MiB", out, re.M)
                rows.append({"pair": k, "competitor": who, "objects": objects,
                             "seconds": float(m.group(1)), "peak_rss_kib": int(m.group(2)) * 1024})
            log(f"render: {out.strip().splitlines()[-1]}")
        pair_ratios = []
        for k in range(a.samples):
            h = next(r for r in rows if r["pair"] == k and r["competitor"] == "hawser render")
            q = next(r for r in rows if r["pair"] == k and r["competitor"] == "kustomize build")
            pair_ratios.append({"pair": k,
                                "seconds": round(h["seconds"] / max(q["seconds"], 0.01), 3),
                                "peak_rss_kib": round(h["peak_rss_kib"] / max(q["peak_rss_kib"], 1), 3)})
        self.results["render"] = {
            "config": {"objects": rows[0]["objects"], "samples": a.samples, "patches": True},
            "samples": rows,
            "medians": {w: {f: median([r[f] for r in rows if r["competitor"] == w])
                            for f in ("seconds", "peak_rss_kib")}
                        for w in ("hawser render", "kustomize build")},
            "ratios_hawser_over_kustomize": pair_ratios,
            "ratio_medians": {f: median([p[f] for p in pair_ratios]) for f in ("seconds", "peak_rss_kib")},
        }


def add_refs(bare, oid, count):
    """`count` extra refs (branches and tags) all naming `oid`, as packed-refs."""
    names = [f"refs/heads/feature/f{i:05d}" for i in range(count // 2)]
    names += [f"refs/tags/v0.{i // 100}.{i % 100}-{i:05d}" for i in range(count - count // 2)]
    lines = [f"{oid} {name}" for name in names]
    with open(os.path.join(bare, "packed-refs"), "a") as f:
        f.write("\n".join(lines) + "\n")
    # Let git rewrite it sorted with the header it wants.
    run(["git", "pack-refs", "--all"], env=git_env(), cwd=bare)


def make_big_repo(bare, files, history_mb):
    """`files` small text files at the tip, and `history_mb` commits that each
    replace a 1 MiB incompressible blob: a big history behind a modest tip."""
    rnd = random.Random(9)
    chunks = []
    t = 1700000000

    def data(b):
        chunks.append(b"data %d\n" % len(b))
        chunks.append(b)
        chunks.append(b"\n")

    def commit(msg, ops):
        nonlocal t
        t += 60
        chunks.append(b"commit refs/heads/main\n")
        chunks.append(b"committer bench <bench@hawser.invalid> %d +0000\n" % t)
        data(msg.encode())
        chunks.extend(ops)

    ops = []
    for i in range(files):
        body = (f"# file {i}\nkey: value-{i}\n" + "line of text %d\n" % i * (i % 20 + 5)).encode()
        ops.append(b"M 644 inline dir%03d/file-%05d.yaml\n" % (i % 100, i))
        ops.append(b"data %d\n" % len(body) + body + b"\n")
    commit("the tree", ops)
    for h in range(history_mb):
        blob = rnd.randbytes(1 << 20)
        commit(f"history {h}", [b"M 644 inline history/blob.bin\n", b"data %d\n" % len(blob) + blob + b"\n"])
    run_bytes(["git", "fast-import", "--quiet"], cwd=bare, input=b"".join(chunks))


def run_bytes(cmd, cwd, input):
    p = subprocess.run(cmd, cwd=cwd, input=input, env=git_env(), capture_output=True)
    if p.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode()[-2000:]}")


ALL = ("memory", "apply", "change", "poll", "latency", "fetch", "fleet", "flux", "render")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="every scenario at a tiny size, 1 sample (for the test suite)")
    p.add_argument("--scenarios", default=",".join(ALL), help="comma-separated subset of: " + ",".join(ALL))
    p.add_argument("--memory-sizes", default="100,1000,5000,20000")
    p.add_argument("--samples-memory", type=int, default=1)
    p.add_argument("--drift-interval", type=int, default=10, help="seconds")
    p.add_argument("--drift-ticks", type=int, default=10)
    p.add_argument("--objects", type=int, default=1000, help="objects for apply, change and flux")
    p.add_argument("--samples", type=int, default=3, help="A/B pairs for apply, change, fetch")
    p.add_argument("--refs", type=int, default=10000)
    p.add_argument("--poll-objects", type=int, default=10)
    p.add_argument("--poll-count", type=int, default=5)
    p.add_argument("--latency-objects", type=int, default=1000)
    p.add_argument("--latency-samples", type=int, default=3, help="poll/webhook pairs")
    p.add_argument("--poll-interval", type=int, default=10, help="seconds, for the latency scenario")
    p.add_argument("--fetch-files", type=int, default=10000)
    p.add_argument("--fetch-history-mb", type=int, default=100)
    p.add_argument("--fleet-sizes", default="100,1000,10000", help="simulated agents per fleet run")
    p.add_argument("--fleet-interval", type=float, default=60, help="seconds between one agent's polls")
    p.add_argument("--fleet-duration", type=float, default=60, help="seconds each fleet run measures")
    p.add_argument("--fleet-servers", default="git,gitea,static,registry",
                   help="servers the fleet scenario measures (comma-separated)")
    p.add_argument("--fleet-bin", help="examples/fleet binary (default: beside --hawser, built if missing)")
    p.add_argument("--render-base-size", type=int, default=50, help="apps per base of the render overlay")
    p.add_argument("--render-extra", type=int, default=390, help="plain ConfigMaps in the render overlay")
    p.add_argument("--apply-timeout", type=int, default=600, help="seconds to wait for a first apply")
    p.add_argument("--hawser", help="hawser binary (default: target/release/hawser, built if missing)")
    p.add_argument("--out", help="directory for <date>.json/.md (default bench/results; --smoke: a temporary directory)")
    p.add_argument("--reuse-env", action="store_true", help="use the control plane whose exports are in the environment")
    p.add_argument("--env-state", default="/tmp/hawser-bench-env", help="state dir of the bench's own control plane")
    p.add_argument("--keep-env", action="store_true", help="leave the control plane running")
    p.add_argument("--keep-work", action="store_true", help="keep the work directory (logs, trees)")
    a = p.parse_args(argv)
    if a.smoke:
        a.memory_sizes, a.samples_memory, a.drift_interval, a.drift_ticks = "10", 1, 2, 1
        a.objects, a.samples, a.refs, a.poll_count = 10, 1, 50, 2
        a.latency_objects, a.latency_samples, a.poll_interval = 10, 1, 2
        a.fetch_files, a.fetch_history_mb, a.apply_timeout = 20, 1, 90
        a.fleet_sizes, a.fleet_interval, a.fleet_duration = "3", 1, 2
        a.render_base_size, a.render_extra = 2, 5
        if a.scenarios == ",".join(ALL):
            a.scenarios = ",".join(s for s in ALL if s != "flux")
    if a.out is None:
        a.out = tempfile.mkdtemp(prefix="hawser-bench-smoke-") if a.smoke else os.path.join(ROOT, "bench/results")
    a.memory_sizes = [int(x) for x in a.memory_sizes.split(",")]
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    unknown = set(a.scenarios) - set(ALL)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return a


def main(argv):
    args = parse_args(argv)
    bench = Bench(args)
    t0 = time.monotonic()
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        bench.up()
        doc = {
            "date": started.strftime("%Y-%m-%d"),
            "started": started.isoformat(timespec="seconds"),
            "command": "scripts/bench " + " ".join(argv),
            "machine": machine(),
            "versions": versions(bench),
            "config": {k: v for k, v in vars(args).items() if k not in ("out",)},
        }
        failed = []
        for name in args.scenarios:
            log(f"scenario {name}")
            s0 = time.monotonic()
            try:
                getattr(bench, f"scenario_{name}")()
            except BenchError as e:
                # Keep what the other scenarios measured; the run still fails.
                log(f"scenario {name} FAILED: {e}")
                failed.append(name)
                bench.results[name] = {"error": str(e)}
                for agent in list(bench.agents):
                    agent.stop()
                for tenant in list(bench.tenants):
                    tenant.delete()
            bench.results[name]["wall_s"] = round(time.monotonic() - s0, 1)
            log(f"scenario {name} done in {time.monotonic() - s0:.0f} s")
        doc["results"] = bench.results
        doc["notes"] = bench.notes + NOTES
        doc["wall_s"] = time.monotonic() - t0
        os.makedirs(args.out, exist_ok=True)
        base = os.path.join(args.out, "smoke" if args.smoke else doc["date"])
        with open(base + ".json", "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        with open(base + ".md", "w") as f:
            f.write(markdown(doc))
        log(f"wrote {base}.json and {base}.md in {doc['wall_s']:.0f} s")
        print(summary_table(bench.results))
        if failed:
            raise BenchError(f"scenarios failed: {', '.join(failed)} (the others were written)")
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        bench.down()
    return 0


NOTES = [
    "Deployments have `replicas: 0`: the test cluster's one kwok node could not hold a pod per Deployment at 5,000 objects, and pods are not what is measured. Services are headless (`clusterIP: None`): the test service CIDR is a /24.",
    "hawser runs as a namespaced ServiceAccount with the Role of tests/support/cluster.rs AGENT_RULES in its home namespace and in every object namespace (`--allow-namespaces`); kubectl runs as a second ServiceAccount with the same Role. Each sample gets fresh namespaces, deleted (and waited for) afterwards.",
    "Apply and change put all N objects in one namespace, the inventory parent's: kubectl's namespaced ApplySet parent requires `-n`, and under `-n` kubectl refuses objects of any other namespace, so a multi-namespace set cannot be one kubectl invocation. Memory and latency spread objects over several namespaces.",
    "`hawser run` counts a revision applied once its health check ends; the harness runs it with `--health-timeout 60s`, so a first apply that waits longer for health is reported at the timeout (the log then says `applied but not healthy within the timeout`: at 5,000 objects the controller-manager had not yet observed every Deployment).",
    "`git ls-remote URL refs/heads/main` still transfers every ref: git matches ls-remote patterns against the tail of ref names, so it cannot turn them into protocol v2 `ref-prefix` arguments.",
    "Times vary from pair to pair on this shared machine (other builds run on the same two cores); RSS, request and byte counts do not. Compare within a pair.",
    "Writes are counted from the API server's audit log (stage ResponseComplete, verbs create/update/patch/delete, dry runs excluded) for the competitor's user, between two marker requests.",
]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
