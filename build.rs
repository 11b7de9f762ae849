//! Two things the build decides once:
//! - ReDoc's standalone bundle is compiled into the binary, so `/redoc` works offline like
//!   Swagger UI. It comes from the npm registry's `redoc` package at a pinned version, checked
//!   against a pinned SHA-512 before use (fetched with npm, or curl where npm is missing); no
//!   third-party bundle lives in this repository.
//!   `REDOC_TARBALL` names an already downloaded `redoc-<version>.tgz` (offline or Docker builds).
//! - `cfg(postgres_tests)` is set when `TEST_DATABASE_URL` is, so Postgres-only tests are reported
//!   as ignored without it instead of passing without having run.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use sha2::{Digest, Sha512};

const REDOC_VERSION: &str = "2.5.2";
const REDOC_SHA512: &str = "b1325f22dbd191c0d3a2307ac1d2cde0cf946ba9a5670125576d537fc327ec86d017fd4eb3a1af810a59c8b58f1996476e1cbb182d4eaf58533077f3d6f2a1e4";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=REDOC_TARBALL");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    if env::var_os("TEST_DATABASE_URL").is_some() {
        println!("cargo::rustc-cfg=postgres_tests");
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(problem) = bring_redoc(&out) {
        panic!(
            "cannot bring ReDoc {REDOC_VERSION} into the build: {problem}\n\
             The build fetches the `redoc` package from the npm registry with npm or curl; \
             offline, download redoc-{REDOC_VERSION}.tgz elsewhere and set REDOC_TARBALL to its path."
        );
    }
}

/// Leaves `redoc.standalone.js` and its licence notice in `out`.
fn bring_redoc(out: &Path) -> Result<(), String> {
    let bundle = out.join("package/bundles/redoc.standalone.js");
    if bundle.exists() {
        return Ok(());
    }
    let tarball = match env::var_os("REDOC_TARBALL") {
        Some(path) => PathBuf::from(path),
        None => download(out)?,
    };
    let bytes =
        fs::read(&tarball).map_err(|e| format!("cannot read {}: {e}", tarball.display()))?;
    let digest: String = Sha512::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if digest != REDOC_SHA512 {
        return Err(format!(
            "{} is not redoc {REDOC_VERSION}: SHA-512 {digest}",
            tarball.display()
        ));
    }
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(out)
        .arg("package/bundles/redoc.standalone.js")
        .arg("package/bundles/redoc.standalone.js.LICENSE.txt"))
}

/// npm (which honours the machine's registry settings), else curl from the npm registry.
fn download(out: &Path) -> Result<PathBuf, String> {
    let tarball = out.join(format!("redoc-{REDOC_VERSION}.tgz"));
    let npm = run(Command::new("npm")
        .args(["pack", "--silent", &format!("redoc@{REDOC_VERSION}")])
        .current_dir(out));
    if npm.is_ok() {
        return Ok(tarball);
    }
    let url = format!("https://registry.npmjs.org/redoc/-/redoc-{REDOC_VERSION}.tgz");
    run(Command::new("curl")
        .args(["-fsSL", "--retry", "2", "-o"])
        .arg(&tarball)
        .arg(&url))
    .map_err(|curl| format!("{} and {curl}", npm.unwrap_err()))?;
    Ok(tarball)
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}
