"""Scenario `fleet` (issue 20): what a fleet of agents costs the one server it polls.

N simulated agents poll an unchanged revision at a jittered interval against one
server on loopback. The pollers are hawser's own poll code: examples/fleet.rs runs N
`Source`s in one process, each polled with `Source::resolve` as the agent loop does
(see its module doc). The same binary's `--client ls-remote` sends the poll Flux's
source-controller and Argo CD's repo-server send: go-git's `Remote.List`, which
speaks protocol v0 over smart HTTP, so the server answers with its full ref
advertisement (Flux: fluxcd/pkg git/gogit/clone.go `getRemoteHEAD`; Argo CD:
util/git/client.go `LsRemote`, both over go-git v5, which has no protocol v2).

Servers:
  git      the tests' git http-backend (tests/env/gitserver.py: Python + git's CGI)
  gitea    the real Gitea of tests/gitea (its binary, a throwaway instance)
  static   the same gitserver.py's /files/ (ETag, Last-Modified): hawser's tarball
           source polls it with conditional GETs
  registry the real `distribution` registry (tests/env/build-tools), anonymous, plain
           HTTP on loopback, one artifact pushed by `oras` as `flux push artifact`
           lays it out (one content layer): hawser's OCI source polls the tag with a
           manifest HEAD and compares the digest it names (agent/source/oci)

Per (server, client, N): server CPU seconds per 1,000 polls (from /proc: the server
process and the children it reaped), bytes on the wire per poll (both directions,
through a counting TCP relay in a separate short run, so the relay costs the load
runs nothing), p50/p99 poll latency, and whether the simulator kept up (polls that
started late against their schedule: then the server did not get the offered load).
The simulator runs on the same cores as the server: on this shared machine the
numbers are pessimistic.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import harness as h


def proc_cpu_s(pid):
    """utime + stime + cutime + cstime of a process, in seconds (children once reaped)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / ticks


class Relay:
    """A TCP relay on loopback that counts the bytes both ways (for bytes per poll)."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.bytes = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    def pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.bytes += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def answers(url):
    """Whether the server at `url` answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def stop(proc):
    """Terminates a server process, killing it if it does not end in 20 s."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


class Gitea:
    """A throwaway Gitea (the binary tests/gitea/build made), configured as tests/gitea
    does, with one public repository mirrored from the bench's bare repository."""

    USER, PASSWORD = "hawser", "hawser-bench-password"

    def __init__(self, bin_path, work, bare):
        self.dir = tempfile.mkdtemp(prefix="gitea-", dir=work)
        self.port = h.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        static_root = os.path.join(os.path.dirname(os.path.dirname(bin_path)), "src")
        env = dict(os.environ, GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT="true")
        self.env = env

        def secret(kind):
            return h.run([bin_path, "generate", "secret", kind], env=env).stdout.strip().splitlines()[-1]

        w = os.path.join(self.dir, "work")
        ini = (
            f"APP_NAME = hawser-bench\nRUN_MODE = prod\nWORK_PATH = {w}\n"
            f"[database]\nDB_TYPE = sqlite3\nPATH = {w}/gitea.db\n"
            f"[repository]\nROOT = {w}/repos\n"
            f"[server]\nHTTP_ADDR = 127.0.0.1\nHTTP_PORT = {self.port}\nROOT_URL = {self.url}/\nDISABLE_SSH = true\n"
            f"STATIC_ROOT_PATH = {static_root}\nAPP_DATA_PATH = {w}/data\nOFFLINE_MODE = true\n"
            f"[security]\nINSTALL_LOCK = true\nSECRET_KEY = {secret('SECRET_KEY')}\nINTERNAL_TOKEN = {secret('INTERNAL_TOKEN')}\n"
            f"[oauth2]\nJWT_SECRET = {secret('JWT_SECRET')}\n"
            "[service]\nDISABLE_REGISTRATION = true\n[log]\nMODE = console\nLEVEL = Warn\n[cron]\nENABLED = false\n"
        )
        self.ini = os.path.join(self.dir, "app.ini")
        with open(self.ini, "w") as f:
            f.write(ini)
        base = [bin_path, "--config", self.ini, "--work-path", w]
        h.run(base + ["migrate"], env=env)
        h.run(base + ["admin", "user", "create", "--username", self.USER, "--password", self.PASSWORD,
                      "--email", "bench@hawser.invalid", "--admin", "--must-change-password=false"], env=env)
        self.proc = subprocess.Popen(base + ["web"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        h.wait_until("gitea to answer", 120, self.up, 0.25)
        # The repository is the bench's bare repository, copied into Gitea's tree and
        # adopted by the admin API: a mirror push of 10,000 refs runs Gitea's hooks
        # per ref and took more than 7 minutes here.
        self.repo_url = f"{self.url}/{self.USER}/fleet.git"
        dest = os.path.join(w, "repos", self.USER, "fleet.git")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copytree(bare, dest)
        auth = "Basic " + h.base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        req = urllib.request.Request(f"{self.url}/api/v1/admin/unadopted/{self.USER}/fleet",
                                     method="POST", headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=120):
            pass
        req = urllib.request.Request(f"{self.url}/api/v1/repos/{self.USER}/fleet", method="PATCH",
                                     data=json.dumps({"private": False}).encode(),
                                     headers={"Authorization": auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30):
            pass

    def up(self):
        return answers(f"{self.url}/api/v1/version")

    def stop(self):
        stop(self.proc)


class Registry:
    """The real `distribution` registry with one artifact under `fleet:v1`, its layer
    the bench's tarball. Request logging is off (an access log line per poll would
    be most of what is measured); filesystem storage, as a small self-hosted one."""

    MEDIA_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip"

    def __init__(self, tools, work, tarball):
        self.dir = tempfile.mkdtemp(prefix="registry-", dir=work)
        self.port = h.free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/data\n"
                    f"http:\n  addr: {self.host}\n")
        self.proc = subprocess.Popen([os.path.join(tools, "registry"), "serve", config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        h.wait_until("the registry to answer", 60, self.up, 0.1)
        env = dict(os.environ, HOME=self.dir, DOCKER_CONFIG=os.path.join(self.dir, "docker"))
        name = os.path.basename(tarball)
        h.run([os.path.join(tools, "oras"), "push", "--plain-http", f"{self.host}/fleet:v1",
               f"{name}:{self.MEDIA_TYPE}"], env=env, cwd=os.path.dirname(tarball))
        self.source_args = ["--source", f"oci://{self.host}/fleet", "--ref", "v1"]

    def up(self):
        return answers(f"http://{self.host}/v2/")

    def stop(self):
        stop(self.proc)


def fleet_binary(bench):
    """examples/fleet beside the hawser binary under test, built when missing."""
    a = bench.args
    if a.fleet_bin:
        return os.path.abspath(a.fleet_bin)
    profile_dir = os.path.dirname(bench.hawser)
    path = os.path.join(profile_dir, "examples", "fleet")
    if not os.path.exists(path):
        release = os.path.basename(profile_dir) == "release"
        h.log(f"building examples/fleet ({'release' if release else 'debug'})")
        h.run(["cargo", "build", "--quiet", "--example", "fleet"] + (["--release"] if release else []),
              cwd=h.ROOT, capture=False)
    if not os.path.exists(path):
        raise h.BenchError(f"{path} was not built; pass --fleet-bin")
    return path


def run_fleet(binary, source_args, client, agents, interval, duration, server_pid):
    """One load run: the fleet's JSON line, plus the server's CPU over it and the
    simulator's own CPU."""
    threads = max(1, min(agents, 256))
    cmd = [binary, *source_args, "--client", client, "--agents", str(agents),
           "--interval", str(interval), "--duration", str(duration), "--threads", str(threads)]
    cpu0 = proc_cpu_s(server_pid)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate()
    cpu1 = proc_cpu_s(server_pid)
    if p.returncode != 0:
        raise h.BenchError(f"{' '.join(cmd)} exited {p.returncode}: {err.strip()[-2000:]}")
    line = json.loads(out.strip().splitlines()[-1])
    line["server_cpu_s"] = round(cpu1 - cpu0, 3)
    return line


def bytes_per_poll(binary, source_args, client, port, polls=20):
    """Bytes on the wire per steady poll, through a counting relay: one agent polls
    `polls` + 1 times; the first (discovery, a full tarball) is left out."""
    relay = Relay(port)
    try:
        args = [a.replace(f"127.0.0.1:{port}", f"127.0.0.1:{relay.port}") for a in source_args]
        interval = 0.05
        cmd = [binary, *args, "--client", client, "--agents", "1", "--interval", str(interval),
               "--threads", "1"]
        # Each run's first poll is a discovery (git) or a full GET (a tarball): a run of
        # one poll is subtracted from a run of many, leaving the steady polls.
        b0 = relay.bytes
        short = subprocess.run(cmd + ["--duration", str(interval / 2)], capture_output=True, text=True)
        one = relay.bytes - b0
        b1 = relay.bytes
        long = subprocess.run(cmd + ["--duration", str(interval * (polls + 0.5))], capture_output=True, text=True)
        if short.returncode != 0 or long.returncode != 0:
            raise h.BenchError(f"fleet bytes run failed: {(short.stderr + long.stderr).strip()[-1000:]}")
        n_long = json.loads(long.stdout.strip().splitlines()[-1])["polls"]
        if n_long <= 1:
            return None
        return round((relay.bytes - b1 - one) / (n_long - 1))
    finally:
        relay.close()


def measure(bench):
    a = bench.args
    sizes = [int(x) for x in a.fleet_sizes.split(",")]
    binary = fleet_binary(bench)
    work = bench.work
    repo = bench.git.repo(bench.prefix("fleet"))
    rev = repo.commit_tree(h.gen_objects(a.poll_objects, ["fleet"]), "fleet target")
    h.add_refs(repo.bare, rev, a.refs)
    tar_name = f"{bench.prefix('fleet')}.tar.gz"
    h.run(["git", "archive", "--format=tar.gz", "-o", os.path.join(bench.git.files, tar_name), rev],
          env=h.git_env(), cwd=repo.bare)

    servers = [("git", bench.git.proc.pid, int(bench.git.url.rsplit(":", 1)[1]),
                [("hawser", ["--source", repo.url, "--ref", "main"]),
                 ("ls-remote", ["--source", repo.url])]),
               ("static", bench.git.proc.pid, int(bench.git.url.rsplit(":", 1)[1]),
                [("hawser", ["--source", f"{bench.git.url}/files/{tar_name}"])])]
    gitea = registry = None
    gitea_bin = os.environ.get("HAWSER_TEST_GITEA")
    tools = os.environ.get("HAWSER_TEST_TOOLS")
    notes = []
    wanted = set(a.fleet_servers.split(","))
    if "gitea" not in wanted:
        pass
    elif gitea_bin and os.path.exists(gitea_bin):
        gitea = Gitea(gitea_bin, work, repo.bare)
        servers.insert(1, ("gitea", gitea.proc.pid, gitea.port,
                           [("hawser", ["--source", gitea.repo_url, "--ref", "main"]),
                            ("ls-remote", ["--source", gitea.repo_url])]))
    else:
        notes.append("Gitea was not measured: HAWSER_TEST_GITEA is not set (tests/gitea/build prints it).")
    if "registry" not in wanted:
        pass
    elif tools and os.path.exists(os.path.join(tools, "registry")):
        registry = Registry(tools, work, os.path.join(bench.git.files, tar_name))
        servers.append(("registry", registry.proc.pid, registry.port, [("hawser", registry.source_args)]))
        notes.append("registry: the `distribution` registry's poll is hawser's OCI source, a manifest HEAD by tag "
                     "(the digest it names is compared with the known one). Flux's OCIRepository makes the same request "
                     "(source-controller `getRevision`: go-containerregistry `remote.Head`, `remote.Get` only if the HEAD "
                     "fails), so one client stands for both.")
    else:
        notes.append("The registry was not measured: HAWSER_TEST_TOOLS is not set (tests/env/build-tools prints it).")
    servers = [srv for srv in servers if srv[0] in wanted]
    rows = []
    try:
        for server, pid, port, clients in servers:
            for client, source_args in clients:
                per_poll = bytes_per_poll(binary, source_args, client, port)
                for n in sizes:
                    h.log(f"fleet: {server} {client}, {n} agents every {a.fleet_interval} s for {a.fleet_duration} s")
                    line = run_fleet(binary, source_args, client, n, a.fleet_interval, a.fleet_duration, pid)
                    polls = max(line["polls"], 1)
                    rows.append({
                        "server": server, "client": client, "agents": n,
                        "interval_s": a.fleet_interval, "duration_s": round(line["duration_s"], 1),
                        "polls": line["polls"], "errors": line["errors"], "first_error": line["first_error"],
                        "offered_per_s": round(line["offered_per_s"], 2),
                        "achieved_per_s": round(line["polls_per_s"], 2),
                        "server_cpu_s": line["server_cpu_s"],
                        "server_cpu_s_per_1000_polls": round(line["server_cpu_s"] / polls * 1000, 2),
                        "bytes_per_poll": per_poll,
                        "p50_ms": line["latency_ms"]["p50"], "p99_ms": line["latency_ms"]["p99"],
                        "max_ms": line["latency_ms"]["max"],
                        "lag_p99_ms": line["lag_ms"]["p99"],
                    })
                    time.sleep(1)
    finally:
        if gitea:
            gitea.stop()
        if registry:
            registry.stop()
    # The largest N that kept p99 under a second with no errors, among those run, and
    # the CPU-bound estimate: the 2 cores' seconds per interval over CPU per poll.
    largest = {}
    cores = os.cpu_count() or 1
    for r in rows:
        key = f"{r['server']} / {r['client']}"
        ok = r["p99_ms"] < 1000 and r["errors"] == 0 and r["lag_p99_ms"] < 1000
        entry = largest.setdefault(key, {"largest_n_p99_under_1s": None, "cpu_bound_n_estimate": None})
        if ok and (entry["largest_n_p99_under_1s"] or 0) < r["agents"]:
            entry["largest_n_p99_under_1s"] = r["agents"]
        per_poll_cpu = r["server_cpu_s_per_1000_polls"] / 1000
        if per_poll_cpu > 0 and r["agents"] == max(sizes):
            entry["cpu_bound_n_estimate"] = int(cores * a.fleet_interval / per_poll_cpu)
    return {
        "config": {"sizes": sizes, "interval_s": a.fleet_interval, "duration_s": a.fleet_duration,
                   "refs": a.refs, "objects": a.poll_objects, "cores": cores},
        "samples": rows,
        "medians": largest,
        "notes": notes,
    }
