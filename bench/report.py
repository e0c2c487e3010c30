"""Reporting for bench/harness.py: the machine and versions, the summary against
issue 9's targets, and the Markdown page written next to the JSON."""

import json
import os
import platform
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    info = {"kernel": platform.release(), "arch": platform.machine(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_kib"] = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
        with open("/etc/os-release") as f:
            info["os"] = next(l for l in f if l.startswith("PRETTY_NAME")).split("=", 1)[1].strip().strip('"')
    except (OSError, StopIteration):
        pass
    info["load_at_start"] = os.getloadavg()
    return info


def versions(bench):
    def out(cmd, env=None):
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        return p.stdout.strip() if p.returncode == 0 else None

    v = {
        "hawser": out([bench.hawser, "version"]),
        "hawser_worktree_commit": out(["git", "-C", ROOT, "rev-parse", "HEAD"]),
        "rustc": out(["rustc", "-V"]),
        "kubectl": out([bench.cluster.kubectl_bin, "version", "--client", "-o", "json"]),
        "git": out(["git", "--version"]),
        "python": platform.python_version(),
    }
    if v["kubectl"]:
        v["kubectl"] = json.loads(v["kubectl"])["clientVersion"]["gitVersion"]
    server = bench.cluster.get("/version")
    v["kube_apiserver"] = server and server.get("gitVersion")
    return v


def kib(x):
    return "–" if x is None else f"{x / 1024:.1f} MiB"


def secs(x):
    return "–" if x is None else f"{x:.2f} s"


def num(x):
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if isinstance(x, int):
        return f"{x:,}"
    return "–" if x is None else (f"{x:g}" if isinstance(x, float) else str(x))


def summary_rows(r):
    """(measure, target, measured) rows for the targets in issue 9."""
    rows = []
    r = {k: v for k, v in r.items() if "error" not in v}
    mem = r.get("memory")
    if mem:
        for n, m in mem["medians"].items():
            target = {"1000": "≤ 16 MiB steady", "5000": "≤ 20 MiB steady, ≤ 32 MiB peak",
                      "20000": "≤ 32 MiB steady"}.get(n, "")
            rows.append((f"RSS steady / peak, {n} objects", target,
                         f"{kib(m['steady_rss_median_kib'])} / {kib(m['peak_rss_kib'])}"))
            if m.get("drift_reconcile_median_s") is not None:
                rows.append((f"no-op drift check in `hawser run`, {n} objects: time, writes",
                             "≤ 2 s, 0 writes" if n == "1000" else "",
                             f"{secs(m['drift_reconcile_median_s'])}, {num(m['drift_writes'])} writes"))
        for u in mem.get("unapplied", []):
            rows.append((f"RSS steady / peak, {u['objects']} objects", "", f"not applied: {u['error']}"))
        b = mem["binary"]
        rows.append(("stripped binary", "≤ 12 MB", f"{(b['stripped_bytes'] or b['bytes']) / 1e6:.2f} MB"))
    ap = r.get("apply")
    if ap:
        h, k = ap["medians"]["hawser"], ap["medians"]["kubectl"]
        n = ap["config"]["objects"]
        rows.append((f"no-op apply of {n}: time, writes (hawser)", "≤ 2 s, 0 writes",
                     f"{secs(h['noop_s'])}, {num(h['noop_writes'])} writes"))
        rows.append((f"no-op apply of {n}: time, writes (kubectl)", "",
                     f"{secs(k['noop_s'])}, {num(k['noop_writes'])} writes"))
        rows.append((f"first apply of {n}: hawser / kubectl", "≤ 0.7×",
                     f"{secs(h['first_s'])} / {secs(k['first_s'])} = {num(ap['ratio_medians']['first_s'])}× (median of pair ratios)"))
    ch = r.get("change")
    if ch:
        h, k = ch["medians"]["hawser"], ch["medians"]["kubectl"]
        rows.append((f"1 of {ch['config']['objects']} changed: time, writes", "",
                     f"hawser {secs(h['change_s'])}, {num(h['writes'])} writes; kubectl {secs(k['change_s'])}, {num(k['writes'])} writes"))
    po = r.get("poll")
    if po:
        for client, m in po["medians"].items():
            target = "≤ 2 KB" if client.startswith("hawser git") else ""
            rows.append((f"unchanged poll, {po['config']['refs']} refs: {client}", target,
                         f"{num(m['bytes'])} B in {num(m['requests'])} request(s)"))
    la = r.get("latency")
    if la:
        rows.append(("commit → visible, webhook", "≤ 2 s", secs(la["medians"]["webhook"]["visible_s"])))
        rows.append((f"commit → visible, polling every {la['config']['interval_s']} s", "",
                     secs(la["medians"]["poll"]["visible_s"])))
    fe = r.get("fetch")
    if fe:
        for who, m in fe["medians"].items():
            rows.append((f"fetch {fe['config']['files']} files / {fe['config']['history_mb']} MB history: {who}", "",
                         f"{secs(m['seconds'])}, peak RSS {kib(m['peak_rss_kib'])}"))
    ft = r.get("fleet")
    if ft:
        for key, m in ft["medians"].items():
            rows.append((f"fleet, {key}: largest N with p99 < 1 s (of {', '.join(map(str, ft['config']['sizes']))}); CPU-bound estimate", "",
                         f"{num(m['largest_n_p99_under_1s'])}; {num(m['cpu_bound_n_estimate'])}"))
    re_ = r.get("render")
    if re_:
        for who, m in re_["medians"].items():
            rows.append((f"render {re_['config']['objects']} objects: {who}", "",
                         f"{secs(m['seconds'])}, peak RSS {kib(m['peak_rss_kib'])}"))
        q = re_["ratio_medians"]
        rows.append(("render: hawser / kustomize", "≤ 0.2× time, ≤ 0.33× RSS",
                     f"{q['seconds']}× time, {q['peak_rss_kib']}× RSS"))
    fl = r.get("flux")
    if fl and fl.get("ran"):
        for name, m in fl["rss"].items():
            rows.append((f"Flux {name}, {fl['objects']} objects: steady / peak RSS", "",
                         f"{kib(m['steady_kib'])} / {kib(m['peak_kib'])}"))
    return rows


def summary_table(results):
    rows = ["| measure | target | measured |", "|---|---|---|"]
    rows += [f"| {m} | {t} | {v} |" for m, t, v in summary_rows(results)]
    return "\n".join(rows)


def markdown(doc):
    r = {k: v for k, v in doc["results"].items() if "error" not in v}
    failed = {k: v["error"] for k, v in doc["results"].items() if "error" in v}
    out = [f"# hawser benchmarks, {doc['date']}", ""]
    out.append(f"Command: `{doc['command']}`  ")
    out.append(f"Wall time: {doc['wall_s']:.0f} s")
    out.append("")
    m = doc["machine"]
    out.append(f"Machine: {m.get('cpu', '?')}, {m['cores']} cores, {m.get('memory_kib', 0) / 1048576:.0f} GiB, "
               f"{m.get('os', '?')}, kernel {m['kernel']}; load average at start {', '.join('%.1f' % x for x in m['load_at_start'])} "
               "(the cores are shared with other work).  ")
    v = doc["versions"]
    out.append(f"Versions: {v['hawser']}; worktree {str(v['hawser_worktree_commit'])[:12]}; kube-apiserver {v['kube_apiserver']}; "
               f"kubectl {v['kubectl']}; {v['git']}; Python {v['python']}.")
    out.append("")
    out.append("## Summary (medians)")
    out.append("")
    out.append(summary_table(r))
    out.append("")

    if "memory" in r:
        out += ["## Memory: `hawser run`", "",
                f"Drift interval {r['memory']['config']['drift_interval_s']} s, "
                f"{r['memory']['config']['drift_ticks']} intervals after the first apply; VmRSS sampled every "
                f"{r['memory']['config']['rss_sample_period_s']} s, peak = VmHWM. Binary: "
                f"{r['memory']['binary']['bytes']} bytes as built (release profile strips), "
                f"{r['memory']['binary']['stripped_bytes']} after `strip`.", "",
                "First apply = from start until hawser reports the revision applied and healthy. Drift checks are "
                "found in the audit log as bursts of the agent's requests.", "",
                "| objects | namespaces | first apply | steady RSS (median) | steady max | peak RSS (VmHWM) | anon / file RSS at end | threads | drift checks | drift check (median) | drift writes |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in r["memory"]["samples"]:
            out.append(f"| {s['objects']} | {s['namespaces']} | {secs(s['first_apply_s'])} | {kib(s['steady_rss_median_kib'])} | "
                       f"{kib(s['steady_rss_max_kib'])} | {kib(s['peak_rss_kib'])} | {kib(s['rss_anon_kib'])} / {kib(s['rss_file_kib'])} | "
                       f"{num(s['threads'])} | {num(s['drift_reconciles'])} | {secs(s['drift_reconcile_median_s'])} | {num(s['drift_writes'])} |")
        out.append("")
    for name, title, fields in (
        ("apply", "Apply: hawser `apply --once` vs `kubectl apply --server-side --prune --applyset`",
         ("first_s", "noop_s", "first_writes", "first_requests", "noop_writes", "noop_requests",
          "first_cpu_s", "noop_cpu_s", "noop_apiserver_s")),
        ("change", "Change: one object changed among N", ("change_s", "cpu_s", "writes", "requests")),
    ):
        if name not in r:
            continue
        out += [f"## {title}", "", f"{r[name]['config']['objects']} objects; run order A B A B; writes and requests from the audit log.", "",
                "| pair | competitor | " + " | ".join(fields) + " |", "|---|---|" + "---|" * len(fields)]
        for s in r[name]["samples"]:
            out.append(f"| {s['pair']} | {s['competitor']} | " + " | ".join(num(s[f]) for f in fields) + " |")
        out.append("")
        out.append("Ratios hawser / kubectl, pair by pair: " + "; ".join(
            f"pair {p['pair']}: " + ", ".join(f"{k} {num(v)}" for k, v in p.items() if k != "pair")
            for p in r[name]["ratios_hawser_over_kubectl"]) + ".")
        out.append("")
    if "poll" in r:
        out += ["## Poll cost", "", f"Repository with {r['poll']['config']['refs']} extra refs; wire bytes from the Git server's log (request + response, headers included).", "",
                "| client | median bytes | request | response | requests per poll |", "|---|---|---|---|---|"]
        for c, m in r["poll"]["medians"].items():
            out.append(f"| {c} | {num(m['bytes'])} | {num(m['request_bytes'])} | {num(m['response_bytes'])} | {num(m['requests'])} |")
        out.append("")
    if "latency" in r:
        out += ["## Latency: commit pushed → object visible", "",
                f"{r['latency']['config']['objects']} objects; poll interval {r['latency']['config']['interval_s']} s; "
                "visible = the admin sees the new value; applied = hawser reports the revision applied.", "",
                "The split comes from the audit log: time until the agent's first API request "
                "(source poll, fetch, verify, parse), and until the changed object was written (after planning every object).", "",
                "| pair | mode | visible | applied (and healthy) | first API request at | write at | API requests |", "|---|---|---|---|---|---|---|"]
        for s in r["latency"]["samples"]:
            out.append(f"| {s['pair']} | {s['mode']} | {secs(s['visible_s'])} | {secs(s['applied_s'])} | "
                       f"{secs(s['to_first_api_request_s'])} | {secs(s['to_write_s'])} | {num(s['api_requests'])} |")
        out.append("")
    if "fetch" in r:
        c = r["fetch"]["config"]
        out += ["## Fetch", "", f"{c['files']} files at the tip, {c['history_mb']} MB of history ({c['repo_object_bytes']} bytes of objects on the server); run order A B A B. "
                "Peak RSS: largest process (highest VmHWM seen, sampled every 20 ms); tree: sampled sum over the process tree every 20 ms.", "",
                "| pair | competitor | time | peak RSS | peak tree RSS | wire bytes | files |", "|---|---|---|---|---|---|---|"]
        for s in r["fetch"]["samples"]:
            out.append(f"| {s['pair']} | {s['competitor']} | {secs(s['seconds'])} | {kib(s['peak_rss_kib'])} | {kib(s['peak_tree_rss_kib'])} | {num(s['wire_bytes'])} | {num(s['files'])} |")
        out.append("")
        out.append("Ratios hawser / git, pair by pair: " + "; ".join(
            f"pair {p['pair']}: time {p['seconds']}, RSS {p['peak_rss_kib']}" for p in r["fetch"]["ratios_hawser_over_git"]) + ".")
        out.append("")
    if "fleet" in r:
        c = r["fleet"]["config"]
        out += ["## Fleet: N agents against one server", "",
                f"Each agent polls an unchanged revision every {c['interval_s']} s (plus hawser's jitter), first polls spread over one interval; "
                f"each run measures {c['duration_s']} s. The repository has {num(c['refs'])} extra refs. Server CPU is the server process's and its "
                "reaped children's (git http-backend) user + system time; bytes per poll are both directions on the wire, from a separate "
                "run through a counting relay. The simulator shares the machine's cores with the server: pessimistic numbers. "
                "`ls-remote` is the poll of Flux's source-controller and Argo CD's repo-server (go-git, protocol v0: the full advertisement).", "",
                "| server | client | agents | polls/s offered / made | server CPU s per 1,000 polls | bytes per poll | p50 | p99 | late start p99 | errors |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for s_ in r["fleet"]["samples"]:
            out.append(f"| {s_['server']} | {s_['client']} | {num(s_['agents'])} | {s_['offered_per_s']} / {s_['achieved_per_s']} | "
                       f"{s_['server_cpu_s_per_1000_polls']} | {num(s_['bytes_per_poll'])} | {s_['p50_ms']} ms | {s_['p99_ms']} ms | "
                       f"{s_['lag_p99_ms']} ms | {num(s_['errors'])} |")
        out.append("")
        out += [f"- {n}" for n in r["fleet"].get("notes", [])] + [""]
    if "flux" in r:
        out += ["## Optional peer: Flux", "", r["flux"].get("note", ""), ""]
    if failed:
        out += ["## Failed scenarios", ""] + [f"- {k}: {v}" for k, v in failed.items()] + [""]
    if doc["notes"]:
        out += ["## Notes", ""] + [f"- {n}" for n in doc["notes"]] + [""]
    return "\n".join(out)


if __name__ == "__main__":
    # Renders the Markdown page again from a results JSON: python3 bench/report.py X.json
    import sys

    for path in sys.argv[1:]:
        with open(path) as f:
            doc = json.load(f)
        with open(path[: -len(".json")] + ".md", "w") as f:
            f.write(markdown(doc))
