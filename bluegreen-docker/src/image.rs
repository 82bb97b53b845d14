//! [`ScratchImage`]: a statically linked binary → a `FROM scratch` image, through the Engine's
//! build API (a tar context sent over the socket: no registry, no docker CLI).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bluegreen_core::{Error, Result};
use bollard::query_parameters::{BuildImageOptions, RemoveImageOptions};
use futures_util::StreamExt;

use crate::engine::Engine;
use crate::error::{backend, is_not_found, BACKEND};

/// A `FROM scratch` image holding one static binary as its entrypoint.
///
/// ```no_run
/// # async fn f() -> bluegreen_core::Result<()> {
/// use bluegreen_docker::{Engine, ScratchImage};
///
/// let engine = Engine::connect("/var/run/docker.sock").await?;
/// ScratchImage::new("target/x86_64-unknown-linux-gnu/release/web", "shop/web:v2")
///     .env("VERSION", "v2")
///     .expose(8080)
///     .build(&engine)
///     .await?;
/// # Ok(()) }
/// ```
///
/// The binary must not need anything from the image (no libc, no certificates, no shell): build
/// it with `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target
/// x86_64-unknown-linux-gnu`. It is copied to `/<file name>`; the `Dockerfile` is
/// ```text
/// FROM scratch
/// COPY <name> /<name>
/// ENV KEY="value" …
/// LABEL "key"="value" …
/// EXPOSE <port>/tcp …
/// ENTRYPOINT ["/<name>"]
/// CMD [args…]
/// ```
/// Values are validated (no newline or NUL) and quoted, so none can add an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScratchImage {
    binary: PathBuf,
    tag: String,
    env: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    expose: Vec<u16>,
    args: Vec<String>,
}

impl ScratchImage {
    /// An image tagged `tag` (`repo:tag`) running `binary`.
    pub fn new(binary: impl Into<PathBuf>, tag: impl Into<String>) -> Self {
        ScratchImage {
            binary: binary.into(),
            tag: tag.into(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            expose: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Sets an environment variable in the image.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Adds an image label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Declares a TCP port.
    pub fn expose(mut self, port: u16) -> Self {
        self.expose.push(port);
        self
    }

    /// Sets the default arguments (`CMD`).
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The path of the binary inside the image (`/<file name>`).
    pub fn entrypoint(&self) -> Result<String> {
        Ok(format!("/{}", self.file_name()?))
    }

    fn file_name(&self) -> Result<String> {
        let name = self
            .binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && name != "Dockerfile";
        if ok {
            Ok(name)
        } else {
            Err(Error::invalid(
                "binary file name",
                self.binary.display().to_string(),
                "must be [A-Za-z0-9._-] and not `Dockerfile`",
            ))
        }
    }

    /// The `Dockerfile`, after validating every value.
    pub fn dockerfile(&self) -> Result<String> {
        let name = self.file_name()?;
        let mut out = format!("FROM scratch\nCOPY {name} /{name}\n");
        for (key, value) in &self.env {
            let ok = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(Error::invalid(
                    "environment variable name",
                    key,
                    "must be [A-Za-z_][A-Za-z0-9_]*",
                ));
            }
            out.push_str(&format!("ENV {key}={}\n", quote("environment variable value", value)?));
        }
        for (key, value) in &self.labels {
            out.push_str(&format!(
                "LABEL {}={}\n",
                quote("label", key)?,
                quote("label value", value)?
            ));
        }
        for port in &self.expose {
            out.push_str(&format!("EXPOSE {port}/tcp\n"));
        }
        // A list of strings always serialises; the fallback is never used.
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| String::from("[]"));
        for arg in &self.args {
            quote("argument", arg)?;
        }
        out.push_str(&format!("ENTRYPOINT {}\n", json(&[format!("/{name}")])));
        if !self.args.is_empty() {
            out.push_str(&format!("CMD {}\n", json(&self.args)));
        }
        Ok(out)
    }

    /// The build context: a tar with the `Dockerfile` and the binary (mode 0755).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a value [`dockerfile`](Self::dockerfile) refuses; a permanent
    /// [`Error::Backend`] when the binary cannot be read or the tar cannot be written, naming
    /// what failed, with the OS error as its [`source`](std::error::Error::source) (not repeated
    /// in the message: [`Error::chain`] prints both).
    ///
    /// Blocking (reads the whole binary): call it from `spawn_blocking`, as
    /// [`build`](Self::build) does.
    #[allow(clippy::disallowed_methods, reason = "blocking by contract (see above)")]
    pub fn context(&self) -> Result<Vec<u8>> {
        let dockerfile = self.dockerfile()?;
        let name = self.file_name()?;
        let binary = std::fs::read(&self.binary).map_err(|e| {
            let message = format!(
                "cannot read the binary {} for image {}",
                self.binary.display(),
                self.tag
            );
            Error::backend_caused_by(BACKEND, message, false, e)
        })?;
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |path: &str, mode: u32, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            tar.append_data(&mut header, path, data)
        };
        let writing = |e: std::io::Error| {
            let message = format!("writing the build context of image {}", self.tag);
            Error::backend_caused_by(BACKEND, message, false, e)
        };
        add("Dockerfile", 0o644, dockerfile.as_bytes())
            .and_then(|()| add(&name, 0o755, &binary))
            .map_err(writing)?;
        tar.into_inner().map_err(writing)
    }

    /// Builds the image and returns its id. A failed build's error carries the builder's output.
    ///
    /// The context (the whole binary, in a tar) is read and built on the blocking pool.
    pub async fn build(&self, engine: &Engine) -> Result<String> {
        let image = self.clone();
        let context = tokio::task::spawn_blocking(move || image.context())
            .await
            .map_err(|e| {
                let message = format!("reading the build context of image {}", self.tag);
                Error::backend_caused_by(BACKEND, message, false, e)
            })??;
        let options = BuildImageOptions {
            t: Some(self.tag.clone()),
            rm: true,
            forcerm: true,
            // No cached intermediate images shared between builds: removing one image prunes its
            // untagged parents, and a concurrent build reusing such a parent from the cache fails
            // with "failed to get digest". A scratch image is one COPY; the cache saves nothing.
            nocache: true,
            ..Default::default()
        };
        let mut stream = engine
            .client()
            .build_image(options, None, Some(bollard::body_full(context.into())));
        let mut output = Vec::new();
        let mut id = None;
        while let Some(info) = stream.next().await {
            let info = info.map_err(|e| backend(format_args!("building image {}", self.tag), e))?;
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_default();
                return Err(Error::backend(
                    BACKEND,
                    format!("building image {}: {message}\n{}", self.tag, output.join("")),
                    false,
                ));
            }
            if let Some(line) = info.stream {
                output.push(line);
            }
            if let Some(aux) = info.aux {
                id = aux.id.or(id);
            }
        }
        id.ok_or_else(|| {
            Error::backend(
                BACKEND,
                format!(
                    "building image {}: the engine reported no image id\n{}",
                    self.tag,
                    output.join("")
                ),
                false,
            )
        })
    }
}

fn quote(what: &'static str, value: &str) -> Result<String> {
    if value.contains(['\n', '\r', '\0']) {
        return Err(Error::invalid(what, value, "must not contain a newline or NUL"));
    }
    Ok(format!(
        "\"{}\"",
        value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$")
    ))
}

/// Removes image `reference` (forcibly: untagged even if stopped containers use it); absent is `Ok`.
pub async fn remove_image(engine: &Engine, reference: &str) -> Result<()> {
    let options = RemoveImageOptions {
        force: true,
        ..Default::default()
    };
    match engine.client().remove_image(reference, Some(options), None).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(backend(format_args!("removing image {reference}"), e)),
    }
}

/// Whether `path` looks like a statically linked ELF executable (no `PT_INTERP` program header):
/// a dynamic one would fail in a `FROM scratch` image with a puzzling "no such file".
///
/// Blocking (reads the whole file): call it from `spawn_blocking`.
#[allow(clippy::disallowed_methods, reason = "blocking by contract (see above)")]
pub fn is_static_executable(path: &Path) -> std::io::Result<bool> {
    let data = std::fs::read(path)?;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return Ok(false);
    }
    // Every read is bounds-checked: a hostile or truncated file reads as "not static", never a panic.
    let bytes = |o: usize, n: usize| o.checked_add(n).and_then(|end| data.get(o..end));
    let u16_at = |o: usize| bytes(o, 2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    let u32_at = |o: usize| bytes(o, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let phoff = bytes(32, 8).map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, u16_at(54), u16_at(56)) else {
        return Ok(false);
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return Ok(false);
    };
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let Some(o) = i.checked_mul(phentsize).and_then(|x| x.checked_add(phoff)) else {
            return Ok(false);
        };
        match u32_at(o) {
            Some(PT_INTERP) => return Ok(false),
            Some(_) => {}
            None => break,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_dockerfile_that_cannot_be_injected() {
        let image = ScratchImage::new("/tmp/demo-app", "demo:v1")
            .env("VERSION", "v1 \"quoted\" $HOME")
            .label("org.example", "x")
            .expose(8080)
            .args(["--flag"]);
        assert_eq!(
            image.dockerfile().unwrap(),
            "FROM scratch\nCOPY demo-app /demo-app\nENV VERSION=\"v1 \\\"quoted\\\" \\$HOME\"\n\
             LABEL \"org.example\"=\"x\"\nEXPOSE 8080/tcp\nENTRYPOINT [\"/demo-app\"]\nCMD [\"--flag\"]\n"
        );
        let bad = ScratchImage::new("/tmp/demo-app", "demo:v1").env("V", "a\nRUN rm -rf /");
        assert!(matches!(
            bad.dockerfile(),
            Err(Error::Invalid {
                what: "environment variable value",
                ..
            })
        ));
        let bad = ScratchImage::new("/tmp/demo app", "demo:v1");
        assert!(matches!(
            bad.dockerfile(),
            Err(Error::Invalid {
                what: "binary file name",
                ..
            })
        ));
    }

    #[test]
    fn the_context_holds_the_dockerfile_and_an_executable_binary() {
        let dir = std::env::temp_dir().join(format!("bluegreen-docker-ctx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("app");
        std::fs::write(&binary, b"binary").unwrap();
        let context = ScratchImage::new(&binary, "t:1").context().unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries[0].0, "Dockerfile");
        assert_eq!(entries[1], ("app".to_string(), 0o755, 6));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unreadable_binary_names_itself_and_keeps_the_os_error_as_source() {
        let err = ScratchImage::new("/nonexistent/app", "t:1").context().unwrap_err();
        assert!(matches!(err, Error::Backend { temporary: false, .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "docker: cannot read the binary /nonexistent/app for image t:1"
        );
        let source = std::error::Error::source(&err).unwrap();
        let io = source.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(err.chain().to_string(), format!("{err}: {io}"));
    }

    #[test]
    fn tells_static_executables_from_dynamic_ones() {
        // The test binary itself is dynamically linked (no crt-static in dev builds).
        let me = std::env::current_exe().unwrap();
        assert!(!is_static_executable(&me).unwrap());
        assert!(!is_static_executable(Path::new("/etc/hostname")).unwrap_or(false));
    }
}
