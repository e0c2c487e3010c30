//! The ways hawser is shipped, checked the way users meet them:
//!
//! - the static binary (`scripts/build-static`, what the Dockerfile's build stage
//!   runs) in an empty root holding only what the image holds plus the two files a
//!   container runtime mounts: it must resolve names (from /etc/hosts and over DNS)
//!   and verify TLS;
//! - the .deb (`scripts/build-deb`): files, modes, owners, control fields, conffile;
//! - the systemd unit: `systemd-analyze verify` and `security`;
//! - the Kubernetes install: server-side dry run with `-f` and `-k`, then a real
//!   install in a throwaway namespace (kwok runs the pod) and hawser applying,
//!   diffing, pruning and recreating under exactly the install's RBAC.
//!
//! The release build is slow on small machines, so it happens at most once per run:
//! scripts/test builds it first and passes its path in `HAWSER_STATIC_BIN`; without
//! that variable the first test that needs it runs scripts/build-static itself
//! (a no-op when the release build is fresh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use support::cluster::{
    admin_kubeconfig, eventually, get_field, hawser, kubectl, kubectl_raw, repo_root, unique,
    write_tree,
};
use support::{GitServer, GitServerOptions, Repo};

// ---------------------------------------------------------------------------------
// The static binary in an empty root
// ---------------------------------------------------------------------------------

/// The static release binary: `HAWSER_STATIC_BIN` when scripts/test built it,
/// otherwise built here once for the whole test process.
fn static_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("HAWSER_STATIC_BIN") {
            return PathBuf::from(path);
        }
        let out = Command::new(repo_root().join("scripts/build-static"))
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/build-static runs");
        assert!(out.status.success(), "scripts/build-static failed");
        let stdout = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(stdout.lines().last().expect("a path on the last line"))
    })
    .clone()
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A tiny DNS server (Python stdlib) on a loopback address of its own, answering
/// every A query with 127.0.0.1 and logging the names asked. It exits when its stdin
/// closes, so a killed test leaves nothing behind.
const DNS_RESPONDER: &str = r#"
import os, socket, struct, sys, threading
addr, log = sys.argv[1], sys.argv[2]
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
print("READY", flush=True)
while True:
    q, peer = s.recvfrom(512)
    end, labels = 12, []
    while q[end]:
        labels.append(q[end + 1:end + 1 + q[end]].decode())
        end += q[end] + 1
    qtype = struct.unpack(">H", q[end + 1:end + 3])[0]
    with open(log, "a") as f:
        f.write(".".join(labels) + " " + str(qtype) + "\n")
    answer = b""
    if qtype == 1:
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    header = q[:2] + struct.pack(">HHHHH", 0x8180, 1, 1 if answer else 0, 0, 0)
    s.sendto(header + q[12:end + 5] + answer, peer)
"#;

struct DnsResponder {
    child: Child,
    log: PathBuf,
}

impl DnsResponder {
    fn start(addr: &str, log: PathBuf) -> Self {
        let mut child = Command::new("python3")
            .args(["-c", DNS_RESPONDER, addr])
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut ready,
        )
        .unwrap();
        if ready.trim() != "READY" {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the DNS responder did not start on {addr}:53: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        DnsResponder { child, log }
    }

    fn queries(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An empty root: the binary at /hawser, the CA bundle of the image, the test CA at
/// /ca.pem, and /etc/hosts and /etc/resolv.conf as given. No libc, no NSS modules,
/// no nsswitch.conf, no shell.
struct EmptyRoot {
    dir: tempfile::TempDir,
}

impl EmptyRoot {
    fn new(binary: &Path, test_ca: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Like an image's root: searchable by the unprivileged user.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(binary, root.join("hawser")).unwrap();
        std::fs::create_dir_all(root.join("etc/ssl/certs")).unwrap();
        // What the Dockerfile copies; Debian's bundle, as in its build stage.
        std::fs::copy(
            "/etc/ssl/certs/ca-certificates.crt",
            root.join("etc/ssl/certs/ca-certificates.crt"),
        )
        .expect("the host has Debian's CA bundle (ca-certificates)");
        std::fs::copy(test_ca, root.join("ca.pem")).unwrap();
        EmptyRoot { dir }
    }

    fn set_name_service(&self, hosts: &str, resolv_conf: &str) {
        std::fs::write(self.dir.path().join("etc/hosts"), hosts).unwrap();
        std::fs::write(self.dir.path().join("etc/resolv.conf"), resolv_conf).unwrap();
    }

    /// Runs /hawser inside the root with an empty environment: `chroot` as root,
    /// else a user namespace mapping us to root (`unshare -r --root`).
    fn hawser(&self, args: &[&str]) -> Output {
        let root = self.dir.path();
        let uid = stdout_of(Command::new("id").arg("-u"));
        let mut cmd = if uid.trim() == "0" {
            // Absolute: the cleared environment has no PATH to search. As the
            // image's numeric user, which has no /etc/passwd entry either.
            let mut cmd = Command::new("/usr/sbin/chroot");
            cmd.arg("--userspec=65532:65532").arg(root);
            cmd
        } else {
            let mut cmd = Command::new("/usr/bin/unshare");
            cmd.arg("--map-root-user")
                .arg(format!("--root={}", root.display()));
            cmd
        };
        cmd.arg("/hawser")
            .args(args)
            .env_clear()
            .output()
            .expect("chroot/unshare runs")
    }

    /// Every file in the root, relative: the test proves the root holds nothing else.
    fn files(&self) -> BTreeSet<String> {
        let mut files = BTreeSet::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(self.dir.path()).unwrap();
                    files.insert(rel.display().to_string());
                }
            }
        }
        files
    }
}

#[test]
fn static_binary_resolves_names_and_verifies_tls_in_an_empty_root() {
    let binary = static_binary();
    let headers = stdout_of(Command::new("readelf").args(["-l", "-d"]).arg(&binary));
    assert!(
        !headers.contains("program interpreter") && !headers.contains("(NEEDED)"),
        "{} is not statically linked:\n{headers}",
        binary.display()
    );
    let size = std::fs::metadata(&binary).unwrap().len();
    eprintln!("static binary: {} ({size} bytes)", binary.display());
    assert!(
        size < 16 << 20,
        "a small agent: {size} bytes is more than 16 MiB"
    );

    let server = GitServer::start(GitServerOptions::default().tls());
    let repo = Repo::create(&server);
    repo.write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\n");
    let oid = repo.commit("first");
    repo.push();
    // By host name: the server's certificate names localhost (and 127.0.0.1).
    let url = format!("https://localhost:{}/{}", server.port(), repo.name());
    let root = EmptyRoot::new(&binary, server.ca_path().unwrap());
    // Loopback addresses of this process's own (engineers share machines): one for
    // the DNS responder, one where nothing listens.
    let pid = std::process::id();
    let host = format!("{}.{}", (pid >> 8) & 0xff, (pid & 0xff).max(1));
    let (dns_addr, dead_addr) = (format!("127.88.{host}"), format!("127.89.{host}"));
    let no_dns = format!("nameserver {dead_addr}\n");
    let resolve = [
        "fetch",
        "--resolve-only",
        "--source",
        &url,
        "--ca-file",
        "/ca.pem",
    ];

    // 1. /etc/hosts names the host. The resolver points at a loopback address where
    //    nothing listens, so only the file can answer.
    root.set_name_service("127.0.0.1 localhost\n", &no_dns);
    assert_eq!(
        root.files(),
        [
            "ca.pem",
            "etc/hosts",
            "etc/resolv.conf",
            "etc/ssl/certs/ca-certificates.crt",
            "hawser"
        ]
        .map(String::from)
        .into(),
        "the root holds only the binary and the files the image and runtime provide"
    );
    let out = root.hawser(&resolve);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fetch via /etc/hosts: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["revision"], oid.as_str(), "{stdout}");

    // 2. TLS is verified, not just spoken: without the test CA the same request fails
    //    on the certificate (the built-in Mozilla roots do not know it).
    let out = root.hawser(&["fetch", "--resolve-only", "--source", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");

    // 3. And so is the name: the certificate does not cover another name for the
    //    same address.
    root.set_name_service("127.0.0.1 git.hawser.test\n", &no_dns);
    let other = format!("https://git.hawser.test:{}/{}", server.port(), repo.name());
    let out = root.hawser(&[
        "fetch",
        "--resolve-only",
        "--source",
        &other,
        "--ca-file",
        "/ca.pem",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not valid for name"), "{stderr}");

    // 4. Without an entry and without a DNS server the name does not resolve: case 1
    //    really read /etc/hosts.
    root.set_name_service("127.0.0.1 other\n", &no_dns);
    let out = root.hawser(&resolve);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("name resolution"), "{stderr}");

    // 5. Over DNS: glibc's built-in dns module, statically linked, asks the server in
    //    /etc/resolv.conf.
    let log = root
        .dir
        .path()
        .parent()
        .unwrap()
        .join(unique("dns-queries"));
    let dns = DnsResponder::start(&dns_addr, log);
    root.set_name_service("127.0.0.1 other\n", &format!("nameserver {dns_addr}\n"));
    let out = root.hawser(&resolve);
    assert!(
        out.status.success(),
        "fetch via DNS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dns.queries().contains("localhost 1"),
        "the A query reached the DNS server: {:?}",
        dns.queries()
    );
}

// ---------------------------------------------------------------------------------
// The Debian package
// ---------------------------------------------------------------------------------

#[test]
fn deb_holds_the_binary_unit_and_conffile_with_root_owned_modes() {
    let binary = static_binary();
    let out_dir = tempfile::tempdir().unwrap();
    let built = stdout_of(
        Command::new(repo_root().join("scripts/build-deb"))
            .arg("--binary")
            .arg(&binary)
            .arg("--out")
            .arg(out_dir.path()),
    );
    let deb = PathBuf::from(built.lines().last().unwrap());
    assert_eq!(
        deb.file_name().unwrap().to_str().unwrap(),
        format!("hawser_{}_amd64.deb", env!("CARGO_PKG_VERSION"))
    );

    // Control fields.
    let field = |name: &str| {
        stdout_of(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "hawser");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(field("Architecture"), "amd64");
    assert_eq!(field("Depends"), "", "static: no dependencies");
    assert!(field("Maintainer").contains('@'));
    assert!(field("Description").starts_with("small GitOps pull agent"));
    let installed_kib: u64 = field("Installed-Size").parse().unwrap();
    let binary_kib = std::fs::metadata(&binary).unwrap().len() / 1024;
    assert!(
        installed_kib >= binary_kib,
        "Installed-Size {installed_kib} KiB covers the {binary_kib} KiB binary"
    );
    let conffiles = stdout_of(
        Command::new("dpkg-deb")
            .arg("-I")
            .arg(&deb)
            .arg("conffiles"),
    );
    assert_eq!(conffiles, "/etc/hawser/hawser.env\n");

    // Files, modes and owners exactly; the archive root must be 0755 (dpkg gives /
    // that mode).
    let listing = stdout_of(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let entries: BTreeSet<(String, String, String)> = listing
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (
                cols[0].to_string(),
                cols[1].to_string(),
                cols[5].to_string(),
            )
        })
        .collect();
    let expect =
        |mode: &str, path: &str| (mode.to_string(), "root/root".to_string(), path.to_string());
    let expected: BTreeSet<_> = [
        expect("drwxr-xr-x", "./"),
        expect("drwxr-xr-x", "./etc/"),
        expect("drwxr-xr-x", "./etc/hawser/"),
        expect("-rw-r-----", "./etc/hawser/hawser.env"),
        expect("drwxr-xr-x", "./lib/"),
        expect("drwxr-xr-x", "./lib/systemd/"),
        expect("drwxr-xr-x", "./lib/systemd/system/"),
        expect("-rw-r--r--", "./lib/systemd/system/hawser.service"),
        expect("drwxr-xr-x", "./usr/"),
        expect("drwxr-xr-x", "./usr/bin/"),
        expect("-rwxr-xr-x", "./usr/bin/hawser"),
        expect("drwxr-xr-x", "./usr/share/"),
        expect("drwxr-xr-x", "./usr/share/doc/"),
        expect("drwxr-xr-x", "./usr/share/doc/hawser/"),
        expect("-rw-r--r--", "./usr/share/doc/hawser/copyright"),
    ]
    .into();
    assert_eq!(entries, expected, "{listing}");

    // Unpacked into a scratch root: the very files of the tree, a binary that runs.
    let root = tempfile::tempdir().unwrap();
    stdout_of(Command::new("dpkg").arg("-x").arg(&deb).arg(root.path()));
    let installed = root.path().join("usr/bin/hawser");
    assert!(
        std::fs::read(&installed).unwrap() == std::fs::read(&binary).unwrap(),
        "the packaged binary is the static build"
    );
    let version = stdout_of(Command::new(&installed).arg("version"));
    assert!(
        version.starts_with(&format!("hawser {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    for (packaged, source) in [
        (
            "lib/systemd/system/hawser.service",
            "systemd/hawser.service",
        ),
        ("etc/hawser/hawser.env", "systemd/hawser.env"),
    ] {
        assert_eq!(
            std::fs::read_to_string(root.path().join(packaged)).unwrap(),
            std::fs::read_to_string(repo_root().join(source)).unwrap(),
            "{packaged}"
        );
    }
    // The unit as installed verifies against the installed binary.
    verify_unit(root.path(), "lib/systemd/system/hawser.service");

    // Maintainer scripts are plain sh and at least parse.
    let control = tempfile::tempdir().unwrap();
    stdout_of(
        Command::new("dpkg-deb")
            .arg("-e")
            .arg(&deb)
            .arg(control.path()),
    );
    for script in ["postinst", "prerm", "postrm"] {
        stdout_of(
            Command::new("sh")
                .arg("-n")
                .arg(control.path().join(script)),
        );
    }

    dpkg_lifecycle_in_a_scratch_root(&deb);
}

/// Installs, upgrades, removes and purges the package with dpkg itself in a scratch
/// root. The maintainer scripts run outside it (--force-script-chrootless; the root
/// has no shell) with DPKG_ROOT set, which they honour: no systemctl, paths under
/// the root.
fn dpkg_lifecycle_in_a_scratch_root(deb: &Path) {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        stdout_of(
            Command::new("dpkg")
                .arg(format!("--root={}", r.display()))
                .args(["--force-script-chrootless", "--log=/dev/null"])
                .args(args),
        )
    };
    let deb = deb.to_str().unwrap();

    dpkg(&["-i", deb]);
    let status = stdout_of(
        Command::new("dpkg-query")
            .arg(format!("--root={}", r.display()))
            .args(["-s", "hawser"]),
    );
    assert!(status.contains("Status: install ok installed"), "{status}");
    assert!(
        status.contains("Conffiles:\n /etc/hawser/hawser.env "),
        "{status}"
    );

    // A local edit of the conffile survives reinstalling (an upgrade's path).
    let env = r.join("etc/hawser/hawser.env");
    let mut edited = std::fs::read_to_string(&env).unwrap();
    edited.push_str("HAWSER_SOURCE=https://git.local.test/edited.git\n");
    std::fs::write(&env, &edited).unwrap();
    dpkg(&["--force-confold", "-i", deb]);
    assert_eq!(std::fs::read_to_string(&env).unwrap(), edited);

    // remove keeps configuration and state; purge removes both.
    let state = r.join("var/lib/private/hawser");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("applied"), "x").unwrap();
    dpkg(&["-r", "hawser"]);
    assert!(!r.join("usr/bin/hawser").exists());
    assert!(!r.join("lib/systemd/system/hawser.service").exists());
    assert!(
        env.exists() && state.exists(),
        "remove keeps config and state"
    );
    dpkg(&["-P", "hawser"]);
    assert!(!env.exists(), "purge removes the conffile");
    assert!(!state.exists(), "purge removes the cache");
}

// ---------------------------------------------------------------------------------
// The systemd unit
// ---------------------------------------------------------------------------------

/// `systemd-analyze verify` of `unit` inside `root` (which must hold the unit's
/// ExecStart binary): the stock targets the unit's default dependencies need are
/// copied in, and any warning counts as a failure (verify exits 0 on unknown keys
/// and unparsable values, it only prints them). Then `security --offline` must rate
/// the unit's exposure at most 2.0 of 10 (it is 1.2; --threshold counts in tenths):
/// dropping a hardening setting fails here.
fn verify_unit(root: &Path, unit: &str) {
    let units = root.join("lib/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    for entry in std::fs::read_dir("/usr/lib/systemd/system").expect("systemd's units") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "target") {
            std::fs::copy(&path, units.join(path.file_name().unwrap())).unwrap();
        }
    }
    let unit = root.join(unit);
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", root.display()))
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs (scripts/install-deps installs systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {}: {stderr}",
        unit.display()
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(format!("--root={}", root.display()))
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze security: exposure above 2.0:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `Key=value` settings of a unit or environment file, comments dropped.
fn settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not Key=value: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn systemd_unit_verifies_and_keeps_its_hardening() {
    let root = tempfile::tempdir().unwrap();
    // verify needs an executable at ExecStart's path; the debug build serves.
    let bin = root.path().join("usr/bin/hawser");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_hawser"), &bin).unwrap();
    let unit_text = std::fs::read_to_string(repo_root().join("systemd/hawser.service")).unwrap();
    write_tree(
        &root.path().join("lib/systemd/system"),
        &[("hawser.service", unit_text.as_str())],
    );
    verify_unit(root.path(), "lib/systemd/system/hawser.service");

    // The settings the design promises, by value (security's score would forgive
    // losing one of them).
    let unit = settings(&unit_text);
    for (key, value) in [
        ("ExecStart", "/usr/bin/hawser run"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "hawser"),
        ("Environment", "HAWSER_CACHE_DIR=%S/hawser"),
        ("EnvironmentFile", "/etc/hawser/hawser.env"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryMax", "64M"),
        ("Restart", "on-failure"),
    ] {
        assert!(
            unit.contains(&(key.to_string(), value.to_string())),
            "hawser.service sets {key}={value}"
        );
    }

    // The example environment file: only KEY=value lines, every key one hawser reads.
    let env = std::fs::read_to_string(repo_root().join("systemd/hawser.env")).unwrap();
    let active = settings(&env);
    assert!(active.iter().any(|(k, _)| k == "HAWSER_SOURCE"));
    let commented: Vec<&str> = env
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.starts_with("HAWSER_") || l.starts_with("RUST_LOG"))
        .collect();
    for line in commented {
        assert!(line.contains('='), "commented example is KEY=value: {line}");
    }
    for (key, _) in &active {
        assert!(
            key.starts_with("HAWSER_") || key == "RUST_LOG",
            "unexpected variable {key} in hawser.env"
        );
    }
}

// ---------------------------------------------------------------------------------
// The image recipe
// ---------------------------------------------------------------------------------

#[test]
fn dockerfile_builds_with_build_static_and_matches_the_deployment() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let deployment =
        std::fs::read_to_string(repo_root().join("packaging/kubernetes/base/deployment.yaml"))
            .unwrap();
    // The same build steps as the tested binary.
    assert!(dockerfile.contains("scripts/build-static"));
    // A minimal final stage: scratch, the binary, the CA bundle, a numeric user.
    let final_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(final_stage.starts_with("scratch"), "final stage is scratch");
    assert!(final_stage.contains("/etc/ssl/certs/ca-certificates.crt"));
    assert!(final_stage.contains("ENTRYPOINT [\"/hawser\"]"));
    for label in ["source", "version", "revision"] {
        assert!(
            final_stage.contains(&format!("org.opencontainers.image.{label}=")),
            "OCI label {label}"
        );
    }
    let user = final_stage
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    let (uid, gid) = user.trim().split_once(':').unwrap();
    assert!(uid.parse::<u32>().unwrap() > 0, "numeric non-root user");
    // The Deployment runs as the image's user, so runAsNonRoot holds either way.
    assert!(deployment.contains(&format!("runAsUser: {uid}\n")));
    assert!(deployment.contains(&format!("runAsGroup: {gid}\n")));
}

// ---------------------------------------------------------------------------------
// The Kubernetes install
// ---------------------------------------------------------------------------------

const BASE_OBJECTS: &[&str] = &[
    "namespace/hawser",
    "serviceaccount/hawser",
    "role.rbac.authorization.k8s.io/hawser-agent",
    "role.rbac.authorization.k8s.io/hawser-manage",
    "rolebinding.rbac.authorization.k8s.io/hawser-agent",
    "rolebinding.rbac.authorization.k8s.io/hawser-manage",
    "persistentvolumeclaim/hawser-cache",
    "service/hawser",
    "deployment.apps/hawser",
    "networkpolicy.networking.k8s.io/hawser",
];

const CLUSTER_SCOPE_OBJECTS: &[&str] = &[
    "clusterrole.rbac.authorization.k8s.io/hawser-cluster-scope",
    "clusterrolebinding.rbac.authorization.k8s.io/hawser-cluster-scope",
];

/// The install's own namespace, `hawser`: a server-side dry run cannot create the
/// Namespace it then puts objects in, so it must exist. Created for the test and
/// deleted after it, unless it was already there.
struct InstallNamespace {
    created: bool,
}

impl InstallNamespace {
    fn ensure() -> Self {
        // A namespace still terminating from an earlier run would refuse the dry runs.
        eventually(
            "namespace hawser to finish terminating",
            Duration::from_secs(60),
            || {
                get_field("namespace", "default", "hawser", "{.status.phase}").as_deref()
                    != Some("Terminating")
            },
        );
        let created = !kubectl_raw(&["get", "namespace", "hawser"], &admin_kubeconfig())
            .status
            .success();
        if created {
            // As a user's first `kubectl apply` would, so the dry runs see an object
            // kubectl apply created.
            let namespace = repo_root().join("packaging/kubernetes/base/namespace.yaml");
            kubectl(&["apply", "-f", namespace.to_str().unwrap()]);
        }
        InstallNamespace { created }
    }
}

impl Drop for InstallNamespace {
    fn drop(&mut self) {
        if self.created {
            let _ = kubectl_raw(
                &["delete", "namespace", "hawser", "--wait=false"],
                &admin_kubeconfig(),
            );
        }
    }
}

/// `kubectl apply --dry-run=server` with `args`: every line must be a server dry
/// run, nothing may warn (Pod Security "restricted" warns about a Deployment whose
/// pods it would refuse); returns the objects named.
fn server_dry_run(args: &[&str]) -> BTreeSet<String> {
    let mut full = vec!["apply", "--dry-run=server"];
    full.extend(args);
    let out = kubectl_raw(&full, &admin_kubeconfig());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "kubectl {}: {stdout}{stderr}",
        full.join(" ")
    );
    stdout
        .lines()
        .map(|line| {
            assert!(line.ends_with("(server dry run)"), "{line}");
            line.split_whitespace().next().unwrap().to_string()
        })
        .collect()
}

fn names(lists: &[&[&str]]) -> BTreeSet<String> {
    lists
        .iter()
        .flat_map(|l| l.iter().map(|s| s.to_string()))
        .collect()
}

#[test]
fn install_manifests_pass_a_server_side_dry_run_with_f_and_k() {
    let _ns = InstallNamespace::ensure();
    let k8s = repo_root().join("packaging/kubernetes");
    let path = |rel: &str| k8s.join(rel).display().to_string();

    let base = names(&[BASE_OBJECTS]);
    assert_eq!(server_dry_run(&["-f", &path("base")]), base, "-f base/");
    assert_eq!(server_dry_run(&["-k", &path("base")]), base, "-k base");
    assert_eq!(
        server_dry_run(&["-k", &path("")]),
        base,
        "-k packaging/kubernetes"
    );
    assert_eq!(
        server_dry_run(&["-k", &path("cluster-scope")]),
        names(&[BASE_OBJECTS, CLUSTER_SCOPE_OBJECTS]),
        "-k cluster-scope"
    );
    // The overlay widens the agent's scope to match its ClusterRole.
    let rendered = kubectl(&["kustomize", &path("cluster-scope")]);
    assert!(rendered.contains("name: HAWSER_ALLOW_CLUSTER_SCOPED\n          value: \"true\""));
}

/// A cluster-scoped PersistentVolume bound in advance to the install's claim (the
/// test control plane has no storage provisioner), removed on drop.
struct PreboundVolume {
    name: String,
}

impl PreboundVolume {
    fn new(namespace: &str) -> Self {
        let name = format!("{namespace}-cache");
        let manifest = format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {name}\nspec:\n  capacity: {{storage: 256Mi}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  storageClassName: \"\"\n  hostPath: {{path: /tmp/{name}}}\n  claimRef: {{namespace: {namespace}, name: hawser-cache}}\n"
        );
        apply_stdin(&manifest);
        PreboundVolume { name }
    }
}

impl Drop for PreboundVolume {
    fn drop(&mut self) {
        let _ = kubectl_raw(
            &["delete", "pv", &self.name, "--wait=false"],
            &admin_kubeconfig(),
        );
    }
}

fn apply_stdin(manifest: &str) {
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", admin_kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The relative path from `from` to `to` (both absolute): kustomize refuses
/// absolute resource paths.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part);
    }
    out
}

/// Removes the throwaway install's namespace when the test ends.
struct NamespaceGuard(String);

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        let _ = kubectl_raw(
            &["delete", "namespace", &self.0, "--wait=false"],
            &admin_kubeconfig(),
        );
    }
}

/// An app as a user keeps it in Git, meeting Pod Security "restricted" like the
/// install's namespace demands, with RBAC (which needs bind/escalate), a Secret and
/// an immutable ConfigMap (to exercise recreate).
fn app(service: bool, frozen: &str, force: bool) -> Vec<(String, String)> {
    let force = if force {
        "\n  annotations:\n    hawser.dev/force: enabled"
    } else {
        ""
    };
    let mut files = vec![
        (
            "config.yaml".to_string(),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: hello\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\nstringData:\n  password: hunter2\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen{force}\nimmutable: true\ndata:\n  value: {frozen}\n"
            ),
        ),
        (
            "rbac.yaml".to_string(),
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: web-read\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get, list]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: web-read\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: web-read\nsubjects:\n- kind: ServiceAccount\n  name: web\n".to_string(),
        ),
        (
            "deploy.yaml".to_string(),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      serviceAccountName: web\n      securityContext:\n        runAsNonRoot: true\n        runAsUser: 1000\n        seccompProfile: {type: RuntimeDefault}\n      containers:\n      - name: web\n        image: nginx:1.27\n        securityContext:\n          allowPrivilegeEscalation: false\n          capabilities: {drop: [ALL]}\n".to_string(),
        ),
    ];
    if service {
        files.push((
            "service.yaml".to_string(),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n".to_string(),
        ));
    }
    files
}

#[test]
fn install_runs_for_real_and_hawser_works_under_its_rbac() {
    let ns = unique("hawser-install");
    let _guard = NamespaceGuard(ns.clone());
    let _volume = PreboundVolume::new(&ns);
    let work = tempfile::tempdir().unwrap();

    // A user's overlay: the install in another namespace. kustomize renames the
    // Namespace object and rewrites every namespace, including the RoleBindings'
    // subjects.
    let overlay = work.path().join("overlay");
    let base = relative(&overlay, &repo_root().join("packaging/kubernetes/base"));
    write_tree(
        &overlay,
        &[(
            "kustomization.yaml",
            &format!("namespace: {ns}\nresources:\n  - {}\n", base.display()),
        )],
    );
    kubectl(&["apply", "-k", overlay.to_str().unwrap()]);

    // The objects are accepted as written.
    let deployment = |path: &str| get_field("deployment", &ns, "hawser", path).unwrap();
    assert_eq!(deployment("{.spec.strategy.type}"), "Recreate");
    assert_eq!(deployment("{.spec.replicas}"), "1");
    assert_eq!(
        deployment("{.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem}"),
        "true"
    );
    assert_eq!(
        deployment("{.spec.template.spec.containers[0].resources.limits.memory}"),
        "64Mi"
    );
    eventually("the cache claim to bind", Duration::from_secs(60), || {
        get_field("pvc", &ns, "hawser-cache", "{.status.phase}").as_deref() == Some("Bound")
    });
    if std::env::var("HAWSER_TEST_KWOK").as_deref() == Ok("1") {
        // kwok plays the kubelet: the pod does not really run, but it is admitted
        // under Pod Security "restricted" (the namespace enforces it), scheduled with
        // its volume, and reported ready.
        let wait = kubectl_raw(
            &[
                "wait",
                "--for=condition=Available",
                "deployment/hawser",
                "-n",
                &ns,
                "--timeout=60s",
            ],
            &admin_kubeconfig(),
        );
        if !wait.status.success() {
            // Usually the ReplicaSet's FailedCreate: Pod Security refused the pod.
            let events = kubectl(&["get", "events", "-n", &ns]);
            panic!("the hawser Deployment did not become Available:\n{events}");
        }
    } else {
        eprintln!("kwok is not running: the Deployment was accepted, not run");
    }

    // hawser itself, under the install's ServiceAccount and nothing else: apply (with
    // RBAC objects, so bind/escalate matter), diff, prune and a forced recreate.
    let token = kubectl(&["create", "token", "hawser", "-n", &ns, "--duration=1h"]);
    let kubeconfig = work.path().join("agent.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: hawser\n  user:\n    token: {}\ncontexts:\n- name: hawser\n  context: {{cluster: test, user: hawser, namespace: {ns}}}\ncurrent-context: hawser\n",
            std::env::var("HAWSER_TEST_APISERVER").unwrap(),
            std::env::var("HAWSER_TEST_CA").unwrap(),
            token.trim()
        ),
    )
    .unwrap();
    let tree = work.path().join("tree");
    let tree_arg = tree.to_str().unwrap().to_string();
    let write = |files: Vec<(String, String)>| {
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        write_tree(&tree, &files);
    };
    let run = |command: &[&str]| {
        let mut args = command.to_vec();
        args.extend(["--dir", &tree_arg, "--namespace", &ns]);
        hawser(&args, &kubeconfig)
    };

    write(app(true, "one", false));
    let applied = run(&["apply", "--once"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let diff = run(&["diff"]);
    assert_eq!(diff.code, 0, "nothing left to change: {diff:?}");
    assert!(get_field("rolebinding", &ns, "web-read", "{.metadata.name}").is_some());

    write(app(false, "two", true));
    let changed = run(&["apply", "--once"]);
    assert_eq!(changed.code, 0, "{changed:?}");
    assert!(
        changed.stdout.contains("recreated ConfigMap"),
        "{}",
        changed.stdout
    );
    assert_eq!(
        get_field("configmap", &ns, "frozen", "{.data.value}").as_deref(),
        Some("two")
    );
    eventually("the Service to be pruned", Duration::from_secs(30), || {
        get_field("service", &ns, "web", "{.metadata.name}").is_none()
    });
}

/// Deletes cluster-scoped objects a test created, whatever happened.
struct ClusterObjects(Vec<(String, String)>);

impl Drop for ClusterObjects {
    fn drop(&mut self) {
        for (kind, name) in &self.0 {
            let _ = kubectl_raw(
                &["delete", kind, name, "--ignore-not-found", "--wait=false"],
                &admin_kubeconfig(),
            );
        }
    }
}

/// A kubeconfig for `sa`'s token in `ns`, written to `path`.
fn sa_token_kubeconfig(ns: &str, sa: &str, path: &Path) {
    let token = kubectl(&["create", "token", sa, "-n", ns, "--duration=1h"]);
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: hawser\n  user:\n    token: {}\ncontexts:\n- name: hawser\n  context: {{cluster: test, user: hawser, namespace: {ns}}}\ncurrent-context: hawser\n",
            std::env::var("HAWSER_TEST_APISERVER").unwrap(),
            std::env::var("HAWSER_TEST_CA").unwrap(),
            token.trim()
        ),
    )
    .unwrap();
}

#[test]
fn cluster_scope_overlay_lets_hawser_manage_cluster_scoped_objects() {
    let ns = unique("hawser-cs");
    // Cluster-scoped names are shared by every run: a name suffix makes the
    // ClusterRole and its binding this test's own (kustomize follows the roleRef).
    let suffix = format!("-{ns}");
    let extra_ns = format!("{ns}-extra");
    let priority = format!("{ns}-low");
    let group = format!("{ns}.test.hawser.dev");
    let crd = format!("widgets.{group}");
    let _cleanup = ClusterObjects(vec![
        ("namespace".into(), ns.clone()),
        ("namespace".into(), extra_ns.clone()),
        ("priorityclass".into(), priority.clone()),
        ("priorityclass".into(), format!("{priority}-2")),
        ("crd".into(), crd.clone()),
        (
            "clusterrole".into(),
            format!("hawser-cluster-scope{suffix}"),
        ),
        (
            "clusterrolebinding".into(),
            format!("hawser-cluster-scope{suffix}"),
        ),
    ]);
    let work = tempfile::tempdir().unwrap();
    let overlay = work.path().join("overlay");
    let base = relative(
        &overlay,
        &repo_root().join("packaging/kubernetes/cluster-scope"),
    );
    write_tree(
        &overlay,
        &[(
            "kustomization.yaml",
            &format!(
                "namespace: {ns}\nnameSuffix: {suffix}\nresources:\n  - {}\n",
                base.display()
            ),
        )],
    );
    kubectl(&["apply", "-k", overlay.to_str().unwrap()]);
    // The overlay's scope flags reached the Deployment.
    let env = get_field(
        "deployment",
        &ns,
        &format!("hawser{suffix}"),
        "{.spec.template.spec.containers[0].env[*].name}",
    )
    .unwrap();
    assert!(env.contains("HAWSER_ALLOW_CLUSTER_SCOPED"), "{env}");

    let kubeconfig = work.path().join("agent.kubeconfig");
    sa_token_kubeconfig(&ns, &format!("hawser{suffix}"), &kubeconfig);
    let tree = work.path().join("tree");
    let objects = |priorities: &[&str]| {
        let mut yaml = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {extra_ns}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {crd}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: widgets, singular: widget, kind: Widget}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n"
        );
        for name in priorities {
            yaml.push_str(&format!(
                "---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\nvalue: 10\n"
            ));
        }
        write_tree(&tree, &[("cluster.yaml", yaml.as_str())]);
    };
    let tree_arg = tree.to_str().unwrap().to_string();
    let apply = || {
        hawser(
            &[
                "apply",
                "--once",
                "--dir",
                &tree_arg,
                "--namespace",
                &ns,
                "--allow-cluster-scoped",
                "--allow-kinds",
                "CustomResourceDefinition",
                // The scope counts a Namespace object as being in itself.
                "--allow-namespaces",
                &extra_ns,
            ],
            &kubeconfig,
        )
    };

    objects(&[&priority]);
    let applied = apply();
    assert_eq!(applied.code, 0, "{applied:?}");
    assert!(get_field("namespace", "default", &extra_ns, "{.metadata.name}").is_some());
    assert!(get_field("priorityclass", "default", &priority, "{.value}").is_some());
    assert!(get_field("crd", "default", &crd, "{.metadata.name}").is_some());

    // The ClusterRole is what allowed it: without its binding the next revision's
    // dry run is forbidden and nothing is written.
    kubectl(&[
        "delete",
        "clusterrolebinding",
        &format!("hawser-cluster-scope{suffix}"),
    ]);
    let second = format!("{priority}-2");
    objects(&[&priority, &second]);
    eventually(
        "the API server to stop authorising the unbound ServiceAccount",
        Duration::from_secs(30),
        || {
            let refused = apply();
            refused.code == 2 && refused.stderr.contains("forbidden")
        },
    );
    assert!(get_field("priorityclass", "default", &second, "{.value}").is_none());
}
