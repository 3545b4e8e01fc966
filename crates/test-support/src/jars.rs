//! Locating the Kafka broker jars (downloaded once per machine by `scripts/kafka-jars.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// The repository root: this crate lives in `<root>/crates/test-support`.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory holding every jar of the broker's classpath, fetched on first use.
///
/// Runs `scripts/kafka-jars.sh` once per process. The script itself serialises concurrent runs
/// (several test binaries at once) with `flock(1)` and returns at once when the cache is
/// complete, so only the first run on a machine pays for the Maven download.
pub(crate) fn jars_dir() -> anyhow::Result<&'static Path> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| fetch().map_err(|e| format!("{e:#}")))
        .as_deref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn fetch() -> anyhow::Result<PathBuf> {
    let script = repo_root().join("scripts/kafka-jars.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}); it needs `mvn` and access to Maven Central on first use",
            script.display(),
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| PathBuf::from(line.trim()))
        .with_context(|| format!("{} printed no directory", script.display()))?;
    if !has_jar(&dir, "kafka_2.13-") {
        bail!("{} holds no Kafka broker jar", dir.display());
    }
    Ok(dir)
}

fn has_jar(dir: &Path, prefix: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
    })
}
