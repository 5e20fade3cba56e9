//! `strata serve` and `strata user create`, as a newcomer runs them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal HTTP/1.1 exchange (the CLI tests need no HTTP client).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), rest.to_owned())
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `strata serve ARGS` and reads its standard error up to "ready",
/// returning what it printed.
fn serve(args: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("serve")
        .args(args)
        .env("STRATA_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut printed = String::new();
    let started = Instant::now();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("the server ended before it was ready:\n{printed}");
        }
        printed.push_str(&line);
        if line.contains("strata: ready") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{printed}");
    }
    // Keep draining so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (Server(child), printed)
}

fn login(port: u16, email: &str, password: &str) -> (u16, String) {
    let body = format!(r#"{{"email": "{email}", "password": "{password}"}}"#);
    let (status, head, _) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        &body,
    );
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap_or_default();
    (status, cookie)
}

#[test]
fn demo_server_lets_the_printed_admin_log_in_and_preview() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let (server, printed) = serve(&[
        "--demo",
        "--demo-customers",
        "300",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        &listen,
    ]);
    let password = printed
        .lines()
        .find_map(|l| l.split(" with password ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no password printed:\n{printed}"));
    let (status, _) = login(port, "admin@demo.strata", "wrong password");
    assert_eq!(status, 401);
    let (status, cookie) = login(port, "admin@demo.strata", password);
    assert_eq!(status, 200);
    assert!(cookie.starts_with("strata_session="));
    let (status, _, body) = http(
        port,
        "POST",
        "/api/v1/stores/demo/segments/preview",
        &[("Content-Type", "application/json"), ("Cookie", &cookie)],
        r#"{"kind": "customer", "rule": "number_of_orders >= 1"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let count: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(count["count"].as_u64().unwrap() > 0, "{body}");
    // The docs page and the document it shows.
    let (status, _, body) = http(port, "GET", "/api/v1/openapi.json", &[], "");
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/api/v1/stores/{store}/segments/preview"].is_object());
    let (status, _, body) = http(port, "GET", "/api/v1/docs/", &[], "");
    assert_eq!(status, 200);
    assert!(body.contains("swagger"), "{body}");
    drop(server);

    // A second start keeps the data and creates no second administrator.
    let (_server, printed) = serve(&[
        "--demo",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        &listen,
    ]);
    assert!(!printed.contains("password"), "{printed}");
    assert_eq!(login(port, "admin@demo.strata", password).0, 200);
}

#[test]
fn user_create_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let create = |email: &str, password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "user",
                "create",
                email,
                "--admin",
                "--data-dir",
                data.to_str().unwrap(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = create("Ops@Example.com", "a long passphrase");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "user 1 created: ops@example.com (admin)\n");
    let (code, _, err) = create("ops@example.com", "another passphrase");
    assert_eq!(code, 1);
    assert!(err.contains("ops@example.com"), "{err}");
    let (code, _, err) = create("x@example.com", "short");
    assert_eq!(code, 1);
    assert!(err.contains("at least 8 characters"), "{err}");

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (_server, _) = serve(&["--data-dir", data.to_str().unwrap(), "--listen", &listen]);
    assert_eq!(login(port, "ops@example.com", "a long passphrase").0, 200);
    assert_eq!(login(port, "ops@example.com", "another passphrase").0, 401);
}
