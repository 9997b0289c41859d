//! `relay new`: a transform crate of its own, outside any workspace, ready
//! to build to a component (`cargo build --release --target wasm32-wasip2`,
//! or `relay build`), to test natively (`cargo test`) and to test as a
//! module on its fixtures (`relay test --expect`).
//!
//! The files are the templates in `dev/template/`, compiled into the binary,
//! with `{{name}}`-style placeholders filled in by [`scaffold`].

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::build::TARGET;

/// The Relay repository `--sdk git=` defaults to when this relay's own
/// checkout is gone: `RELAY_SDK_GIT` when the relay was built, else a
/// placeholder to replace.
pub const SDK_GIT_URL: &str = match option_env!("RELAY_SDK_GIT") {
    Some(url) => url,
    None => "https://git.example.com/your-org/relay.git",
};

/// The files of a new transform crate: path inside the crate, template.
const TEMPLATES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("template/Cargo.toml.tmpl")),
    (
        "rust-toolchain.toml",
        include_str!("template/rust-toolchain.toml.tmpl"),
    ),
    (".gitignore", include_str!("template/gitignore.tmpl")),
    ("README.md", include_str!("template/README.md.tmpl")),
    ("src/lib.rs", include_str!("template/lib.rs.tmpl")),
    (
        "fixtures/records.json",
        include_str!("template/fixtures/records.json"),
    ),
    (
        "fixtures/settings.json",
        include_str!("template/fixtures/settings.json.tmpl"),
    ),
    (
        "fixtures/records.expected.jsonl",
        include_str!("template/fixtures/records.expected.jsonl.tmpl"),
    ),
];

/// A name that shows what a valid one looks like, for error messages.
const NAME_EXAMPLE: &str = "order-events";

/// Names Rust or Cargo keep for themselves, and the crates every transform
/// depends on (a package cannot share its name with a dependency), with
/// `-` written as `_`.
const RESERVED: &[(&str, &str)] = &[
    ("as", "a Rust keyword"),
    ("async", "a Rust keyword"),
    ("await", "a Rust keyword"),
    ("break", "a Rust keyword"),
    ("const", "a Rust keyword"),
    ("continue", "a Rust keyword"),
    ("crate", "a Rust keyword"),
    ("dyn", "a Rust keyword"),
    ("else", "a Rust keyword"),
    ("enum", "a Rust keyword"),
    ("extern", "a Rust keyword"),
    ("false", "a Rust keyword"),
    ("fn", "a Rust keyword"),
    ("for", "a Rust keyword"),
    ("gen", "a Rust keyword"),
    ("if", "a Rust keyword"),
    ("impl", "a Rust keyword"),
    ("in", "a Rust keyword"),
    ("let", "a Rust keyword"),
    ("loop", "a Rust keyword"),
    ("match", "a Rust keyword"),
    ("mod", "a Rust keyword"),
    ("move", "a Rust keyword"),
    ("mut", "a Rust keyword"),
    ("pub", "a Rust keyword"),
    ("ref", "a Rust keyword"),
    ("return", "a Rust keyword"),
    ("self", "a Rust keyword"),
    ("static", "a Rust keyword"),
    ("struct", "a Rust keyword"),
    ("super", "a Rust keyword"),
    ("trait", "a Rust keyword"),
    ("true", "a Rust keyword"),
    ("try", "a Rust keyword"),
    ("type", "a Rust keyword"),
    ("unsafe", "a Rust keyword"),
    ("use", "a Rust keyword"),
    ("where", "a Rust keyword"),
    ("while", "a Rust keyword"),
    ("abstract", "a reserved Rust keyword"),
    ("become", "a reserved Rust keyword"),
    ("box", "a reserved Rust keyword"),
    ("do", "a reserved Rust keyword"),
    ("final", "a reserved Rust keyword"),
    ("macro", "a reserved Rust keyword"),
    ("override", "a reserved Rust keyword"),
    ("priv", "a reserved Rust keyword"),
    ("typeof", "a reserved Rust keyword"),
    ("unsized", "a reserved Rust keyword"),
    ("virtual", "a reserved Rust keyword"),
    ("yield", "a reserved Rust keyword"),
    ("alloc", "the name of a standard library crate"),
    ("core", "the name of a standard library crate"),
    ("proc_macro", "the name of a standard library crate"),
    ("std", "the name of a standard library crate"),
    ("test", "the name of a standard library crate"),
    ("build", "a folder name Cargo uses in target/"),
    ("deps", "a folder name Cargo uses in target/"),
    ("examples", "a folder name Cargo uses in target/"),
    ("incremental", "a folder name Cargo uses in target/"),
    ("relay_sdk", "a crate every transform depends on"),
    ("relay_record", "a crate every transform depends on"),
    ("serde", "a crate every transform depends on"),
    ("serde_json", "a crate every transform depends on"),
    ("wit_bindgen", "a crate every transform depends on"),
];

/// Type names the template's own code uses, which the transform's type must
/// not shadow.
const TYPES_IN_SCOPE: &[&str] = &[
    "BusinessEvent",
    "Changed",
    "Deserialize",
    "Event",
    "Image",
    "Map",
    "Operation",
    "Record",
    "Serialize",
    "Settings",
    "Transform",
    "TransformError",
    "Value",
    // The prelude's.
    "Box",
    "Err",
    "None",
    "Ok",
    "Option",
    "Result",
    "Some",
    "String",
    "Vec",
];

/// Why a transform crate could not be written.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// The name is not a crate name a transform can have.
    #[error("invalid transform name {name:?}: {reason}; a valid name looks like {NAME_EXAMPLE:?}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `relay new` never writes into a folder that already holds something.
    #[error(
        "{} already exists and is not empty: relay new writes only into a new or empty \
         folder (choose another with --path DIR)",
        .0.display()
    )]
    NotEmpty(PathBuf),
    /// `--sdk` is neither `path=DIR` nor `git=URL`.
    #[error(
        "--sdk takes path=DIR (a Relay checkout or its guest-sdk folder) or git=URL \
         (a Relay repository), e.g. --sdk path=../relay or --sdk git={SDK_GIT_URL}, not {0:?}"
    )]
    InvalidSdk(String),
    /// `--sdk path=` names no relay-sdk crate.
    #[error(
        "{} holds no relay-sdk crate: give a Relay checkout or its guest-sdk folder, \
         e.g. --sdk path=../relay",
        .0.display()
    )]
    NotTheSdk(PathBuf),
    /// Reading the folder or writing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where the new crate takes `relay-sdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// The `guest-sdk` folder of a Relay checkout on this machine.
    Path(PathBuf),
    /// A Relay git repository.
    Git(String),
}

impl SdkSource {
    /// This relay's own checkout's SDK when it is still where the relay was
    /// built from, else [`SDK_GIT_URL`].
    pub fn default_for_this_relay() -> SdkSource {
        match checkout_sdk() {
            Some(dir) => SdkSource::Path(dir),
            None => SdkSource::Git(SDK_GIT_URL.to_owned()),
        }
    }

    /// A `--sdk` path made absolute against `cwd`, checked to be a relay-sdk
    /// crate: the folder itself or its `guest-sdk` subfolder.
    pub fn resolve(self, cwd: &Path) -> Result<SdkSource, NewError> {
        let SdkSource::Path(dir) = self else {
            return Ok(self);
        };
        let dir = cwd.join(dir);
        [dir.clone(), dir.join("guest-sdk")]
            .into_iter()
            .find(|candidate| is_sdk(candidate))
            .map(|found| SdkSource::Path(found.canonicalize().unwrap_or(found)))
            .ok_or(NewError::NotTheSdk(dir))
    }

    /// The dependency line for `Cargo.toml`.
    pub fn dependency(&self) -> String {
        let quoted = |text: &str| toml::Value::String(text.to_owned()).to_string();
        match self {
            SdkSource::Path(dir) => format!(
                "relay-sdk = {{ path = {} }}",
                quoted(&dir.to_string_lossy())
            ),
            SdkSource::Git(url) => format!("relay-sdk = {{ git = {} }}", quoted(url)),
        }
    }
}

impl fmt::Display for SdkSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdkSource::Path(dir) => write!(f, "{}", dir.display()),
            SdkSource::Git(url) => write!(f, "git {url}"),
        }
    }
}

impl FromStr for SdkSource {
    type Err = NewError;

    /// `path=DIR` or `git=URL`.
    fn from_str(text: &str) -> Result<Self, NewError> {
        match text.split_once('=') {
            Some(("path", dir)) if !dir.is_empty() => Ok(SdkSource::Path(dir.into())),
            Some(("git", url)) if !url.is_empty() => Ok(SdkSource::Git(url.to_owned())),
            _ => Err(NewError::InvalidSdk(text.to_owned())),
        }
    }
}

/// The Relay checkout this relay was built from (it may be gone since).
pub fn this_checkout() -> &'static Path {
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR"));
    runtime.parent().unwrap_or(runtime)
}

/// The `guest-sdk` folder of [`this_checkout`], if it is still there.
pub fn checkout_sdk() -> Option<PathBuf> {
    let dir = this_checkout().join("guest-sdk");
    is_sdk(&dir).then_some(dir)
}

/// Whether `dir` holds the `relay-sdk` package.
fn is_sdk(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|manifest| {
            manifest
                .get("package")
                .and_then(|package| package.get("name"))
                .and_then(toml::Value::as_str)
                == Some("relay-sdk")
        })
}

/// Checks that `name` can name a transform crate: lowercase letters, digits,
/// `-` and `_`, starting with a letter, at most 64 characters, and not a
/// name Rust or Cargo reserves or one of the crates a transform depends on.
pub fn validate_name(name: &str) -> Result<(), NewError> {
    let invalid = |reason: String| NewError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if name.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) || !name.chars().all(allowed) {
        return Err(invalid(
            "use lowercase letters, digits, '-' and '_', starting with a letter".into(),
        ));
    }
    if name.len() > 64 {
        return Err(invalid("it is longer than 64 characters".into()));
    }
    let normalized = name.replace('-', "_");
    let windows = ["con", "prn", "aux", "nul"].contains(&normalized.as_str())
        || (normalized.len() == 4
            && (normalized.starts_with("com") || normalized.starts_with("lpt"))
            && normalized.ends_with(|c: char| c.is_ascii_digit()));
    if windows {
        return Err(invalid("it is a reserved file name on Windows".into()));
    }
    match RESERVED
        .iter()
        .find(|(reserved, _)| *reserved == normalized)
    {
        Some((_, what)) => Err(invalid(format!("it is {what}"))),
        None => Ok(()),
    }
}

/// The Rust type for the transform named `name`: `order-events` →
/// `OrderEvents` (`TransformTransform` and the like when the plain one would
/// shadow a type the template uses).
pub fn type_name(name: &str) -> String {
    let mut out: String = name
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect();
    if TYPES_IN_SCOPE.contains(&out.as_str()) {
        out.push_str("Transform");
    }
    out
}

/// What [`scaffold`] wrote.
#[derive(Debug)]
pub struct Scaffold {
    /// The crate's folder.
    pub dir: PathBuf,
    /// The files written, relative to [`Scaffold::dir`].
    pub files: Vec<&'static str>,
    /// Where the release build puts the module, relative to the crate's
    /// folder (without `CARGO_TARGET_DIR`).
    pub module: String,
}

/// Writes the transform crate `name` into `dir` (created if missing; it must
/// be empty), taking relay-sdk from `sdk`. Never overwrites a file.
pub fn scaffold(name: &str, dir: &Path, sdk: &SdkSource) -> Result<Scaffold, NewError> {
    validate_name(name)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| NewError::Io { path, source }
    };
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Ok(true) => {}
        Ok(false) => return Err(NewError::NotEmpty(dir.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // Anything else, a file among them: not a folder relay new may use.
        Err(_) if dir.exists() => return Err(NewError::NotEmpty(dir.to_owned())),
        Err(e) => return Err(io(dir)(e)),
    }
    let module = format!("target/{TARGET}/release/{}.wasm", name.replace('-', "_"));
    let vars = Vars {
        name,
        type_name: &type_name(name),
        sdk_dependency: &sdk.dependency(),
        sdk_source: &match sdk {
            SdkSource::Path(dir) => format!("`{}`", dir.display()),
            SdkSource::Git(url) => format!("the Relay repository `{url}`"),
        },
        module_path: &module,
        module_file: &format!("{}.wasm", name.replace('-', "_")),
    };
    let mut files = Vec::with_capacity(TEMPLATES.len());
    for (file, template) in TEMPLATES {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut out| out.write_all(vars.render(template).as_bytes()))
            .map_err(io(&path))?;
        files.push(*file);
    }
    Ok(Scaffold {
        dir: dir.to_owned(),
        files,
        module,
    })
}

/// The values of the templates' placeholders.
struct Vars<'a> {
    /// `{{name}}`: the crate's name, also the default event type's prefix.
    name: &'a str,
    /// `{{type_name}}`: the transform's Rust type.
    type_name: &'a str,
    /// `{{sdk_dependency}}`: the `relay-sdk = ...` line of Cargo.toml.
    sdk_dependency: &'a str,
    /// `{{sdk_source}}`: where relay-sdk comes from, for the README.
    sdk_source: &'a str,
    /// `{{module_path}}`: the built module, relative to the crate.
    module_path: &'a str,
    /// `{{module_file}}`: the built module's file name.
    module_file: &'a str,
}

impl Vars<'_> {
    fn render(&self, template: &str) -> String {
        [
            ("{{name}}", self.name),
            ("{{type_name}}", self.type_name),
            ("{{sdk_dependency}}", self.sdk_dependency),
            ("{{sdk_source}}", self.sdk_source),
            ("{{module_path}}", self.module_path),
            ("{{module_file}}", self.module_file),
        ]
        .into_iter()
        .fold(template.to_owned(), |text, (placeholder, value)| {
            text.replace(placeholder, value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("relay-new-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn git() -> SdkSource {
        SdkSource::Git("https://example.com/relay.git".into())
    }

    #[test]
    fn valid_names_pass() {
        for name in ["order-events", "orders", "a", "payments_v2", "x-1-y"] {
            validate_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        validate_name(&"a".repeat(64)).unwrap();
    }

    #[test]
    fn validate_rejects_names_that_are_not_crate_names() {
        for name in [
            "",
            "Orders",
            "order events",
            "1orders",
            "-orders",
            "_orders",
            "orders!",
            "ördes",
            "orders.v2",
        ] {
            let err = validate_name(name).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{name:?}")) && err.contains("\"order-events\""),
                "{name}: {err}"
            );
        }
        assert!(validate_name(&"a".repeat(65))
            .unwrap_err()
            .to_string()
            .contains("64"));
    }

    #[test]
    fn validate_rejects_reserved_names_saying_why() {
        for (name, why) in [
            ("fn", "Rust keyword"),
            ("self", "Rust keyword"),
            ("test", "standard library"),
            ("proc-macro", "standard library"),
            ("deps", "Cargo"),
            ("relay-sdk", "depends on"),
            ("serde_json", "depends on"),
            ("serde-json", "depends on"),
            ("nul", "Windows"),
            ("com1", "Windows"),
        ] {
            let err = validate_name(name).unwrap_err().to_string();
            assert!(err.contains(why), "{name}: {err}");
        }
    }

    #[test]
    fn type_names_are_camel_case_and_never_shadow_the_templates_types() {
        assert_eq!(type_name("order-events"), "OrderEvents");
        assert_eq!(type_name("payments_v2"), "PaymentsV2");
        assert_eq!(type_name("x-1-y"), "X1Y");
        assert_eq!(type_name("a__b"), "AB");
        assert_eq!(type_name("transform"), "TransformTransform");
        assert_eq!(type_name("settings"), "SettingsTransform");
        assert_eq!(type_name("record"), "RecordTransform");
    }

    #[test]
    fn sdk_sources_parse_and_render_as_dependencies() {
        assert_eq!(
            "path=../relay".parse::<SdkSource>().unwrap(),
            SdkSource::Path("../relay".into())
        );
        let git: SdkSource = "git=https://example.com/relay.git".parse().unwrap();
        assert_eq!(
            git.dependency(),
            r#"relay-sdk = { git = "https://example.com/relay.git" }"#
        );
        let odd = SdkSource::Path(r#"/src/"quoted"\relay/guest-sdk"#.into());
        let parsed: toml::Table = format!("[dependencies]\n{}", odd.dependency())
            .parse()
            .unwrap();
        assert_eq!(
            parsed["dependencies"]["relay-sdk"]["path"].as_str(),
            Some(r#"/src/"quoted"\relay/guest-sdk"#)
        );
        for bad in ["../relay", "path=", "git=", "url=https://x", "version=1"] {
            let err = bad.parse::<SdkSource>().unwrap_err().to_string();
            assert!(
                err.contains("path=DIR") && err.contains(bad),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn this_checkouts_sdk_is_found_from_the_checkout_or_its_guest_sdk() {
        let sdk = checkout_sdk().expect("tests run in the checkout");
        assert!(sdk.ends_with("guest-sdk"), "{}", sdk.display());
        assert_eq!(SdkSource::default_for_this_relay(), SdkSource::Path(sdk));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let from_root = SdkSource::Path("..".into()).resolve(Path::new(env!("CARGO_MANIFEST_DIR")));
        let expected = root.join("guest-sdk").canonicalize().unwrap();
        assert_eq!(from_root.unwrap(), SdkSource::Path(expected.clone()));
        let direct = SdkSource::Path(root.join("guest-sdk")).resolve(Path::new("/"));
        assert_eq!(direct.unwrap(), SdkSource::Path(expected));
        let err = SdkSource::Path("src".into())
            .resolve(Path::new(env!("CARGO_MANIFEST_DIR")))
            .unwrap_err();
        assert!(matches!(err, NewError::NotTheSdk(_)), "{err}");
        assert_eq!(git().resolve(Path::new("/")).unwrap(), git());
    }

    #[test]
    fn every_placeholder_of_every_template_is_filled() {
        let dir = scratch("placeholders");
        let made = scaffold("order-events", &dir, &git()).unwrap();
        assert_eq!(made.files.len(), TEMPLATES.len());
        assert_eq!(
            made.module,
            "target/wasm32-wasip2/release/order_events.wasm"
        );
        for file in &made.files {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let mut rest = text.as_str();
            while let Some(at) = rest.find("{{") {
                rest = &rest[at + 2..];
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                assert!(
                    word.is_empty() || !rest[word.len()..].starts_with("}}"),
                    "{file}: {{{{{word}}}}} left unfilled"
                );
            }
        }
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("impl Transform for OrderEvents {"), "{lib}");
        assert!(lib.contains(r#""order-events.changed""#), "{lib}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_manifest_has_the_guest_release_profile_and_a_workspace_of_its_own() {
        let dir = scratch("manifest");
        scaffold("order-events", &dir, &git()).unwrap();
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let manifest: toml::Table = text.parse().unwrap();
        assert_eq!(manifest["package"]["name"].as_str(), Some("order-events"));
        assert_eq!(
            manifest["lib"]["crate-type"],
            toml::Value::Array(vec!["cdylib".into(), "rlib".into()])
        );
        assert_eq!(
            manifest["dependencies"]["relay-sdk"]["git"].as_str(),
            Some("https://example.com/relay.git")
        );
        let release = &manifest["profile"]["release"];
        assert_eq!(release["opt-level"].as_integer(), Some(3));
        assert_eq!(release["lto"].as_bool(), Some(true));
        assert_eq!(release["codegen-units"].as_integer(), Some(1));
        assert_eq!(release["strip"].as_bool(), Some(true));
        assert_eq!(
            manifest["workspace"],
            toml::Value::Table(Default::default())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_fixtures_are_an_event_and_its_expected_events() {
        let dir = scratch("fixtures");
        scaffold("order-events", &dir, &git()).unwrap();
        let read = |file| std::fs::read_to_string(dir.join(file)).unwrap();
        let records = relay_record::testing::records_from_str(&read("fixtures/records.json"));
        let expected = read("fixtures/records.expected.jsonl");
        assert_eq!(expected.lines().count(), records.len());
        for line in expected.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(event["event_type"], "order-events.changed", "{line}");
        }
        let settings: serde_json::Value =
            serde_json::from_str(&read("fixtures/settings.json")).unwrap();
        assert_eq!(settings["event_type"], "order-events.changed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scaffold_writes_into_a_new_or_empty_folder_only() {
        let dir = scratch("empty");
        std::fs::create_dir_all(&dir).unwrap();
        scaffold("orders", &dir, &git()).unwrap();
        let err = scaffold("orders", &dir, &git()).unwrap_err();
        assert!(matches!(err, NewError::NotEmpty(_)), "{err}");
        assert!(err.to_string().contains("not empty"), "{err}");

        let file = dir.join("README.md");
        let err = scaffold("orders", &file, &git()).unwrap_err();
        assert!(matches!(err, NewError::NotEmpty(_)), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scaffold_checks_the_name_before_touching_the_disk() {
        let dir = scratch("bad-name");
        let err = scaffold("Bad Name", &dir, &git()).unwrap_err();
        assert!(matches!(err, NewError::InvalidName { .. }), "{err}");
        assert!(!dir.exists());
    }
}
