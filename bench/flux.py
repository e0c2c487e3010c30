"""Optional peer (scenario 7): Flux's controllers on the same N objects.

Flux needs two controllers: source-controller (fetches Git, serves a tarball
artifact) and kustomize-controller (builds and applies it). They are built from
the Go module proxy by bench/flux-build (wrapper modules, as tests/env/k8s does
for Kubernetes) into $HAWSER_BENCH_FLUX_BIN (default ~/.cache/hawser-bench/flux/bin).

source-controller could not be built here (see NOTE_SOURCE). kustomize-controller
could, so it runs against a stand-in for source-controller: a GitRepository whose
status the harness writes (as source-controller would) pointing at a tarball the
test Git server serves. What is measured is kustomize-controller alone; Flux as
deployed also runs source-controller (and usually two more controllers).
"""

import hashlib
import io
import os
import subprocess
import tarfile
import time

import harness as h

FLUX_VERSION = "v1.9.6"
NOTE_SOURCE = (
    "source-controller could not be built from the Go module proxy reachable here: v1.10.1 needs "
    "Go ≥ 1.27 (the toolchain module downloads) and then github.com/fluxcd/pkg/masktoken@v0.10.0 and "
    "github.com/fluxcd/pkg/http/transport@v0.9.0, which the proxy refuses (403 \"This module version is "
    "not available\"); v1.9.6 needs github.com/fluxcd/pkg/artifact@v0.18.3, refused the same way."
)


def bin_dir():
    return os.environ.get(
        "HAWSER_BENCH_FLUX_BIN", os.path.expanduser("~/.cache/hawser-bench/flux/bin")
    )


def crd_files():
    mod = os.path.join(os.path.expanduser("~/go/pkg/mod/github.com/fluxcd"))
    # kustomize-controller watches every source kind, so all source CRDs are needed.
    return [
        os.path.join(mod, f"kustomize-controller@{FLUX_VERSION}/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml"),
        *(os.path.join(mod, f"source-controller@{FLUX_VERSION}/config/crd/bases/source.toolkit.fluxcd.io_{kind}.yaml")
          for kind in ("gitrepositories", "buckets", "ocirepositories", "externalartifacts", "helmcharts", "helmrepositories")),
    ]


def measure(bench):
    a = bench.args
    kc = os.path.join(bin_dir(), "kustomize-controller")
    missing = [p for p in [kc, *crd_files()] if not os.path.exists(p)]
    if missing:
        return {"ran": False, "note": f"{NOTE_SOURCE} kustomize-controller was not built ({', '.join(missing)} missing; run bench/flux-build)."}
    n = a.objects
    cluster = bench.cluster
    cluster.kubectl("apply", "--server-side", *sum((["-f", f] for f in crd_files()), []))
    cluster.kubectl("wait", "--for=condition=Established", "crd/kustomizations.kustomize.toolkit.fluxcd.io",
                    "crd/gitrepositories.source.toolkit.fluxcd.io", "--timeout=60s")
    tenant = h.Tenant(bench, bench.prefix("flux"), h.n_namespaces(n), sas=())
    home = tenant.home
    cluster.kubectl("create", "namespace", home, check=False)

    # The artifact source-controller would serve: a tar.gz of the revision's tree.
    files = h.gen_objects(n, tenant.namespaces)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1700000000
            tar.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    name = f"{bench.prefix('flux')}.tar.gz"
    with open(os.path.join(bench.git.files, name), "wb") as f:
        f.write(blob)
    digest = hashlib.sha256(blob).hexdigest()
    revision = "main@sha1:" + hashlib.sha1(blob).hexdigest()

    cluster.kubectl("apply", "-f", "-", input=f"""
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: bench, namespace: {home}}}
spec: {{url: "{bench.git.url}/unused.git", interval: 10m, ref: {{branch: main}}}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: bench, namespace: {home}}}
spec:
  interval: {a.drift_interval}s
  path: ./
  prune: true
  sourceRef: {{kind: GitRepository, name: bench}}
""")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {"status": {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stand-in",
                        "lastTransitionTime": now, "observedGeneration": 1}],
        "artifact": {"path": f"gitrepository/{home}/bench/x.tar.gz", "url": f"{bench.git.url}/files/{name}",
                     "revision": revision, "digest": f"sha256:{digest}", "lastUpdateTime": now,
                     "size": len(blob)},
    }}
    status_code, _ = cluster.api(
        "PATCH", f"/apis/source.toolkit.fluxcd.io/v1/namespaces/{home}/gitrepositories/bench/status",
        status, ctype="application/merge-patch+json")
    if status_code != 200:
        raise h.BenchError(f"writing the stand-in GitRepository status: HTTP {status_code}")

    env = dict(bench.env, KUBECONFIG=bench.env["HAWSER_TEST_ADMIN_KUBECONFIG"], RUNTIME_NAMESPACE=home)
    log_path = os.path.join(bench.work, "kustomize-controller.log")
    logf = open(log_path, "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [kc, f"--metrics-addr=127.0.0.1:{h.free_port()}", f"--health-addr=127.0.0.1:{h.free_port()}",
         "--enable-leader-election=false", "--watch-all-namespaces=true", "--log-level=info"],
        env=env, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    rss = h.RssSampler(proc.pid)
    path = f"/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/{home}/kustomizations/bench"

    def applied():
        if proc.poll() is not None:
            raise h.BenchError(f"kustomize-controller exited {proc.returncode}; log {log_path}")
        obj = cluster.get(path) or {}
        return obj.get("status", {}).get("lastAppliedRevision") == revision

    try:
        h.log(f"flux: kustomize-controller applying {n} objects")
        h.wait_until("kustomize-controller to apply the revision", a.apply_timeout, applied, 0.5)
        t_applied = time.monotonic()
        first_s = t_applied - t0
        h.log(f"flux: {a.drift_ticks} intervals of {a.drift_interval} s")
        time.sleep(a.drift_interval * a.drift_ticks)
        steady = rss.between(t_applied, time.monotonic())
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        rss.stop()
        logf.close()
        # The controller is gone: drop its finalizer so the namespace can go.
        cluster.api("PATCH", path, {"metadata": {"finalizers": None}}, ctype="application/merge-patch+json")
        tenant.delete()
    m = {"steady_kib": h.median(steady), "peak_kib": rss.hwm_kib, "first_apply_s": round(first_s, 3),
         "rss_samples_kib": steady}
    return {
        "ran": True, "objects": n, "version": FLUX_VERSION,
        "rss": {"kustomize-controller": m},
        "note": (
            f"kustomize-controller {FLUX_VERSION} (built from the Go module proxy, {os.path.getsize(kc) / 1e6:.0f} MB "
            f"stripped) applied the same {n} objects from a tarball, reconciling every {a.drift_interval} s: "
            f"steady RSS {h.kib(m['steady_kib'])}, peak {h.kib(m['peak_kib'])}, first apply {m['first_apply_s']} s. "
            f"It ran as a host process with the admin kubeconfig against a stand-in for source-controller "
            f"(a GitRepository whose status the harness wrote, pointing at the tarball). {NOTE_SOURCE} "
            "So Flux's total is this plus source-controller's RSS, which was not measured."
        ),
    }
