//! PostgreSQL and Redis instances of a test's own: `initdb`/`pg_ctl` into a temporary
//! directory and `redis-server` on free loopback ports (as `scripts/services` starts
//! the shared ones), so a test can kill, restart or reconfigure (TLS) them without
//! disturbing any other test. Removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::app::free_port;
use super::wait::wait_for;

pub const PG_USER: &str = "mas";
pub const PG_PASSWORD: &str = "mas";

/// A scratch directory, removed on drop; readable by the `postgres` account when
/// the tests run as root (PostgreSQL refuses to run as root).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "mas-it-{tag}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        chown_postgres(&dir);
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub fn chown_postgres(path: &Path) {
    if is_root() {
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(path)
            .status();
    }
}

/// `cmd` as the `postgres` account when running as root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn pg_bin(name: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("PostgreSQL is installed (scripts/services install)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL bin directory with initdb")
        .join(name)
}

/// TLS material for a server: certificate and key (PEM).
#[derive(Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A PostgreSQL cluster of the test's own, on 127.0.0.1:`port`.
pub struct OwnPostgres {
    pub port: u16,
    data: PathBuf,
    socket_dir: PathBuf,
    options: String,
    _scratch: Scratch,
}

impl OwnPostgres {
    /// `initdb` and start; with `tls`, only TLS connections are accepted (`hostssl`).
    pub fn start(tls: Option<ServerTls>) -> OwnPostgres {
        let scratch = Scratch::new("pg");
        let data = scratch.path("data");
        let socket_dir = scratch.path("run");
        std::fs::create_dir_all(&socket_dir).expect("socket dir");
        let pwfile = scratch.path("pw");
        std::fs::write(&pwfile, PG_PASSWORD).expect("pwfile");
        chown_postgres(&scratch.0);
        let out = as_postgres(&pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", PG_USER, "-E", "UTF8", "--locale=C.UTF-8"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            socket_dir.display()
        );
        if let Some(tls) = &tls {
            // The key must belong to the server account and be private to it.
            let cert = data.join("server.crt");
            let key = data.join("server.key");
            std::fs::copy(&tls.cert, &cert).expect("copy cert");
            std::fs::copy(&tls.key, &key).expect("copy key");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .expect("key mode");
            chown_postgres(&data);
            options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .expect("pg_hba");
            chown_postgres(&data);
        }
        let pg = OwnPostgres {
            port,
            data,
            socket_dir,
            options,
            _scratch: scratch,
        };
        pg.start_server();
        pg
    }

    fn start_server(&self) {
        let out = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("server.log"))
            .args(["-w", "-t", "30", "start", "-o", &self.options])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
        );
    }

    /// `postgres://mas:mas@127.0.0.1:port/db` plus `query` (e.g. `sslmode=...`).
    pub fn url(&self, db: &str, query: &str) -> String {
        let mut url = format!(
            "postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        );
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// Creates database `name` (over the local socket).
    pub fn create_db(&self, name: &str) {
        let out = as_postgres(&pg_bin("createdb"))
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", PG_USER, name])
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (`-m fast`: sessions are terminated, like a real restart).
    pub fn stop(&self) {
        let _ = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
    }

    pub fn start_again(&self) {
        self.start_server();
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Client-side trust for [`OwnRedis::start`] with TLS.
#[derive(Clone)]
pub struct RedisTls {
    pub server: ServerTls,
    pub ca: PathBuf,
}

/// A `redis-server` of the test's own on 127.0.0.1:`port` (append-only file with
/// fsync on every write, so a SIGKILL and restart loses nothing, as production
/// BullMQ deployments are configured).
pub struct OwnRedis {
    pub port: u16,
    dir: Scratch,
    tls: Option<RedisTls>,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub async fn start(tls: Option<RedisTls>) -> OwnRedis {
        let mut redis = OwnRedis {
            port: free_port(),
            dir: Scratch::new("redis"),
            tls,
            child: None,
        };
        redis.spawn().await;
        redis
    }

    async fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match &self.tls {
            None => {
                cmd.args(["--port", &self.port.to_string()]);
            }
            Some(tls) => {
                cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(&tls.server.cert)
                    .arg("--tls-key-file")
                    .arg(&tls.server.key)
                    .arg("--tls-ca-cert-file")
                    .arg(&tls.ca)
                    .args(["--tls-auth-clients", "no"]);
            }
        }
        self.child = Some(cmd.spawn().expect("redis-server is installed"));
        let port = self.port;
        wait_for(
            "redis-server to listen",
            Duration::from_secs(10),
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
    }

    /// `redis://127.0.0.1:port` (`rediss://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA and a certificate for `127.0.0.1` / `localhost` signed by it, made with
/// `openssl` in `dir`; also a second, unrelated CA (to show verification bites).
pub struct TestPki {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server: ServerTls,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn make_pki(dir: &Path) -> TestPki {
    for (key, cert, cn) in [
        ("ca.key", "ca.crt", "MAS test CA"),
        ("other.key", "other.crt", "Unrelated CA"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                key,
                "-out",
                cert,
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
    );
    chown_postgres(dir);
    TestPki {
        ca: dir.join("ca.crt"),
        other_ca: dir.join("other.crt"),
        server: ServerTls {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        },
    }
}
