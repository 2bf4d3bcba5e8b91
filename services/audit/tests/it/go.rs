//! Finding, building and running the Go interop program (`tests/go`), offline, from
//! Debian's `golang-go` and `golang-golang-x-mod-dev` (which `.ci/setup` installs).
//!
//! Go builds in GOPATH mode against Debian's copy of golang.org/x/mod:
//! `cd tests/go && GO111MODULE=off GOPATH=/usr/share/gocode go build -o interop .`, with its
//! build cache under Cargo's target directory, so it needs no network and no home directory.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Where Debian's golang-golang-x-mod-dev puts golang.org/x/mod.
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

fn go_command(args: &[&str]) -> Command {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build");
    let mut command = Command::new("go");
    command
        .args(args)
        .env("GO111MODULE", "off")
        .env("GOPATH", DEBIAN_GOPATH)
        .env("GOCACHE", cache)
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local");
    command
}

/// The built interop program, or `None` (after saying why) when Go is not installed and this
/// is not CI. Under CI (`CI` set and not `false`), a missing Go fails the test.
pub fn interop() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(build).as_deref()
}

fn build() -> Option<PathBuf> {
    if go_command(&["version"]).output().is_err() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "CI is set but `go` is not installed: `source .ci/setup` installs golang-go and \
             golang-golang-x-mod-dev"
        );
        // Straight to stderr, past libtest's capture, so a skip is never silent.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: `go` is not installed, so hooklog-audit is not checked against Go's \
             golang.org/x/mod/sumdb; `source .ci/setup` installs golang-go and \
             golang-golang-x-mod-dev"
        );
        return None;
    }
    let x_mod = Path::new(DEBIAN_GOPATH).join("src/golang.org/x/mod/sumdb/tlog");
    assert!(
        x_mod.is_dir(),
        "{} is missing: install golang-golang-x-mod-dev (`source .ci/setup`)",
        x_mod.display()
    );
    // Through `../audit` so the admin crate's tests, which include this file, find it too.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/tests/go");
    let binary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-interop");
    let output = go_command(&["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(source)
        .output()
        .expect("go runs");
    assert!(
        output.status.success(),
        "go build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(binary)
}

/// Runs the program with `args`, echoing its report (shown with `--nocapture` or on failure).
pub fn run(program: &Path, args: &[&OsStr]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .expect("interop runs");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    output
}
