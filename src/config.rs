//! Configuration: every variable of SPEC §9 parsed and checked once, at start-up.
//! A bad value stops start-up with one message naming the variable; secrets are
//! redacted in `Debug`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ledger::AMOUNT_MAJOR_CEILING;
use crate::sdk::SdkMode;

/// The placeholder key of `systemd/sysgp.env.example`; the Debian package replaces it.
pub const PLACEHOLDER_SECRET_KEY: &str = "replace-me-with-a-random-key-of-at-least-32-characters";

/// Values `SECRET_KEY` may never take (compared case-insensitively).
const KNOWN_PLACEHOLDERS: &[&str] =
    &["changeme", "change-me", "secret", "your-secret-key", "insecure", PLACEHOLDER_SECRET_KEY];

/// A bad configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub var: String,
    /// What is wrong and what is expected.
    pub problem: String,
}

fn bad(var: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError { var: var.to_owned(), problem: problem.into() }
}

/// `SECRET_KEY`, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a key (already checked).
    pub fn new(key: String) -> SecretKey {
        SecretKey(key)
    }

    /// The key bytes, for HMAC.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Every setting, parsed.
#[derive(Clone, Debug)]
pub struct Config {
    /// `SECRET_KEY` (required by `serve`).
    pub secret_key: Option<SecretKey>,
    /// `DEBUG`.
    pub debug: bool,
    /// `MOJALOOP_SDK_URL` (required by `serve`).
    pub sdk_url: Option<String>,
    /// `CORS_ALLOWED_ORIGINS`, exact origins.
    pub cors_allowed_origins: Vec<String>,
    /// `SYSGP_BIND`.
    pub bind: SocketAddr,
    /// `SYSGP_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `SYSGP_CACHE_MB`.
    pub cache_mb: u64,
    /// `SYSGP_SDK_MODE`.
    pub sdk_mode: SdkMode,
    /// `SYSGP_SDK_TIMEOUT_SECS`.
    pub sdk_timeout: Duration,
    /// `SYSGP_AMOUNT_MAX`, major units.
    pub amount_max: u64,
    /// `SYSGP_CASH_APPROVAL_ABOVE`, major units.
    pub cash_approval_above: Option<u64>,
    /// `SYSGP_BULK_*` and `SYSGP_BREAKER_*`.
    pub bulk: crate::engine::BulkSettings,
    /// `SYSGP_TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<IpAddr>,
    /// `SYSGP_BEHIND_TLS_PROXY`.
    pub behind_tls_proxy: bool,
    /// `SYSGP_LOGIN_USER_FAILURES`: failed logins per user per window.
    pub login_user_failures: usize,
    /// `SYSGP_LOGIN_ADDRESS_FAILURES`: failed logins per client address per window.
    pub login_address_failures: usize,
    /// `SYSGP_LOGIN_WINDOW_SECS`.
    pub login_window: Duration,
    /// `SYSGP_SESSION_TTL_SECS`: session lifetime.
    pub session_ttl: Duration,
    /// Variables that were accepted with a warning: logged at start and shown on the
    /// admin page to every signed-in user.
    pub warnings: Vec<String>,
    /// Warnings about `SECRET_KEY` (a weak key accepted under `DEBUG`): logged only.
    pub key_warnings: Vec<String>,
}

/// Every `SYSGP_*` variable this build knows; others are warned about.
const KNOWN_SYSGP: &[&str] = &[
    "SYSGP_BIND",
    "SYSGP_DATA_DIR",
    "SYSGP_CACHE_MB",
    "SYSGP_SDK_MODE",
    "SYSGP_SDK_TIMEOUT_SECS",
    "SYSGP_AMOUNT_MAX",
    "SYSGP_CASH_APPROVAL_ABOVE",
    "SYSGP_BULK_WORKERS",
    "SYSGP_BULK_RATE_PER_SEC",
    "SYSGP_BULK_APPROVAL",
    "SYSGP_BULK_FILE_MAX_MB",
    "SYSGP_BULK_ROWS_MAX",
    "SYSGP_BULK_TOTAL_MAX",
    "SYSGP_BREAKER_UNREACHABLE",
    "SYSGP_BREAKER_WINDOW",
    "SYSGP_BREAKER_MIN_ATTEMPTS",
    "SYSGP_BREAKER_FAILURE_PERCENT",
    "SYSGP_TRUSTED_PROXIES",
    "SYSGP_BEHIND_TLS_PROXY",
    "SYSGP_LOGIN_USER_FAILURES",
    "SYSGP_LOGIN_ADDRESS_FAILURES",
    "SYSGP_LOGIN_WINDOW_SECS",
    "SYSGP_SESSION_TTL_SECS",
];

/// The variables a command sees: the env file, overridden by the process environment.
pub fn gather_vars(env_file: Option<&Path>) -> Result<HashMap<String, String>, ConfigError> {
    let mut vars = HashMap::new();
    let default_file = Path::new("/etc/sysgp/sysgp.env");
    let file = match env_file {
        Some(p) => Some(p.to_path_buf()),
        None if default_file.exists() => Some(default_file.to_path_buf()),
        None => None,
    };
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| bad("--env-file", format!("cannot read {}: {e}", path.display())))?;
        vars.extend(
            parse_env_file(&text)
                .map_err(|line| bad("--env-file", format!("{}: line {line} is not KEY=VALUE", path.display())))?,
        );
    }
    vars.extend(std::env::vars());
    Ok(vars)
}

/// Parses `KEY=VALUE` lines (`#` comments, blank lines, optional `export ` and quotes).
/// Returns the number of the first bad line.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, usize> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=').ok_or(i + 1)?;
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(i + 1);
        }
        let value = value.trim();
        let unquoted =
            ['"', '\''].iter().find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q))).unwrap_or(value);
        out.insert(key.to_owned(), unquoted.to_owned());
    }
    Ok(out)
}

struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(bad(name, format!("expected true or false, got {v:?}"))),
        }
    }

    fn number<T: std::str::FromStr + PartialOrd + fmt::Display + Copy>(
        &self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<T>() {
                Ok(n) if n >= min && n <= max => Ok(n),
                _ => Err(bad(name, format!("expected a whole number from {min} to {max}, got {v:?}"))),
            },
        }
    }
}

impl Config {
    /// Parses and checks every variable.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let v = Vars(vars);
        let debug = v.bool("DEBUG", false)?;
        let mut key_warnings = Vec::new();
        // Trimmed like every other variable and every `--env-file` value, so the same
        // key gives the same HMAC keys whichever way it is set.
        let secret_key = match v.0.get("SECRET_KEY") {
            None => None,
            Some(key) => Some(check_secret_key(key.trim(), debug, &mut key_warnings)?),
        };
        check_log_filter(v.0.get("RUST_LOG").map(String::as_str))?;
        let mut warnings = Vec::new();
        let sdk_url = v.get("MOJALOOP_SDK_URL").map(check_sdk_url).transpose()?;
        let bind = match v.get("SYSGP_BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 8000)),
            Some(b) => b
                .parse()
                .map_err(|_| bad("SYSGP_BIND", format!("expected host:port such as 127.0.0.1:8000, got {b:?}")))?,
        };
        let sdk_mode = match v.get("SYSGP_SDK_MODE") {
            None => SdkMode::Auto,
            Some(m) => SdkMode::parse(m).ok_or_else(|| {
                bad("SYSGP_SDK_MODE", format!("expected auto, accept_party or accept_quote, got {m:?}"))
            })?,
        };
        let cash_approval_above = match v.get("SYSGP_CASH_APPROVAL_ABOVE") {
            None => {
                warnings.push(
                    "SYSGP_CASH_APPROVAL_ABOVE is unset: deposits and withdrawals of any size need no checker".into(),
                );
                None
            }
            Some(_) => Some(v.number("SYSGP_CASH_APPROVAL_ABOVE", 0, 0, AMOUNT_MAJOR_CEILING)?),
        };
        let bulk_approval = v.bool("SYSGP_BULK_APPROVAL", true)?;
        if !bulk_approval {
            warnings.push("SYSGP_BULK_APPROVAL=false: valid bulk jobs start without a checker".into());
        }
        for name in vars.keys().filter(|k| k.starts_with("SYSGP_") && !KNOWN_SYSGP.contains(&k.as_str())) {
            warnings.push(format!("unknown variable {name} ignored"));
        }
        Ok(Config {
            secret_key,
            debug,
            sdk_url,
            cors_allowed_origins: parse_origins(v.get("CORS_ALLOWED_ORIGINS"))?,
            bind,
            data_dir: data_dir(&v)?,
            cache_mb: v.number("SYSGP_CACHE_MB", 64, 8, 65_536)?,
            sdk_mode,
            sdk_timeout: Duration::from_secs(v.number("SYSGP_SDK_TIMEOUT_SECS", 100, 1, 3600)?),
            amount_max: v.number("SYSGP_AMOUNT_MAX", 1_000_000_000_000, 1, AMOUNT_MAJOR_CEILING)?,
            cash_approval_above,
            bulk: bulk_settings(&v, bulk_approval)?,
            trusted_proxies: parse_proxies(v.get("SYSGP_TRUSTED_PROXIES"))?,
            behind_tls_proxy: v.bool("SYSGP_BEHIND_TLS_PROXY", false)?,
            login_user_failures: v.number("SYSGP_LOGIN_USER_FAILURES", 5, 1, 1000)?,
            login_address_failures: v.number("SYSGP_LOGIN_ADDRESS_FAILURES", 100, 1, 100_000)?,
            login_window: Duration::from_secs(v.number("SYSGP_LOGIN_WINDOW_SECS", 900, 1, 86_400)?),
            session_ttl: Duration::from_secs(v.number("SYSGP_SESSION_TTL_SECS", 8 * 3600, 1, 30 * 86_400)?),
            warnings,
            key_warnings,
        })
    }

    /// What `serve` needs beyond a parseable configuration.
    pub fn check_for_serve(&self) -> Result<(), ConfigError> {
        if self.secret_key.is_none() {
            return Err(bad(
                "SECRET_KEY",
                "is required: set a random value of at least 32 characters (e.g. `openssl rand -hex 32`)",
            ));
        }
        if self.sdk_url.is_none() {
            return Err(bad(
                "MOJALOOP_SDK_URL",
                "is required: the SDK Scheme Adapter outbound URL, e.g. http://127.0.0.1:4001",
            ));
        }
        if !self.bind.ip().is_loopback() && !self.behind_tls_proxy {
            return Err(bad(
                "SYSGP_BIND",
                format!("{} is not a loopback address: bearer tokens must not cross a network in clear; put sysgp behind a TLS reverse proxy and set SYSGP_BEHIND_TLS_PROXY=true", self.bind),
            ));
        }
        check_data_dir(&self.data_dir)
    }
}

/// `SYSGP_DATA_DIR`: unset means `./data`. Set but empty is refused, as an empty
/// `SECRET_KEY` is: it is most likely a variable expanded from nothing, and falling back
/// would silently put the ledger in whatever the working directory is. (Elsewhere an
/// empty value means unset, because there it picks a harmless default or "none".)
fn data_dir(v: &Vars<'_>) -> Result<PathBuf, ConfigError> {
    match v.0.get("SYSGP_DATA_DIR") {
        None => Ok(PathBuf::from("./data")),
        Some(dir) if dir.trim().is_empty() => {
            Err(bad("SYSGP_DATA_DIR", "is empty: expected the path of the data directory (unset it to use ./data)"))
        }
        Some(dir) => Ok(PathBuf::from(dir.trim())),
    }
}

/// The data directory must be a directory, or missing with a directory as its nearest
/// existing ancestor (it is then created).
fn check_data_dir(dir: &Path) -> Result<(), ConfigError> {
    let expects = "expected a directory (created when missing)";
    for ancestor in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) if ancestor == dir => {
                return Err(bad("SYSGP_DATA_DIR", format!("{expects}, but {} is a file", dir.display())))
            }
            Ok(_) => {
                return Err(bad(
                    "SYSGP_DATA_DIR",
                    format!("{expects}, but {} lies under {}, which is a file", dir.display(), ancestor.display()),
                ))
            }
            // Missing, or "not a directory" below a file: the ancestor will say which.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => continue,
            Err(e) => return Err(bad("SYSGP_DATA_DIR", format!("cannot examine {}: {e}", ancestor.display()))),
        }
    }
    Ok(())
}

/// The levels `RUST_LOG` may name (case-insensitive), as `log` parses them.
const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// Checks `RUST_LOG` (None: unset, the default applies). env_logger reads a bare word
/// that is not a level as a module name and ignores a bad level with a warning of its
/// own, so a typo (`debugg`, `sysgp=loud`) would silently log nothing; this accepts
/// only comma-separated `level` or `target=level` directives, optionally followed by
/// env_logger's `/filter`. Empty is refused: env_logger reads it as errors only, not as
/// the default.
pub fn check_log_filter(value: Option<&str>) -> Result<(), ConfigError> {
    let Some(value) = value else { return Ok(()) };
    let expected = "expected comma-separated directives `level` or `target=level` (levels: off, error, warn, \
                    info, debug, trace), optionally followed by /filter, e.g. info or info,sysgp::http=warn";
    let refuse = |what: String| Err(bad("RUST_LOG", format!("{what}: {expected}")));
    let (directives, filter) = match value.split_once('/') {
        Some((directives, filter)) => (directives, Some(filter)),
        None => (value, None),
    };
    if filter.is_some_and(|f| f.contains('/')) {
        return refuse(format!("{value:?} has more than one '/'"));
    }
    let mut count = 0;
    for directive in directives.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let (target, level) = match directive.split_once('=') {
            Some((target, level)) => (Some(target), level.trim()),
            None => (None, directive),
        };
        let target_ok = target.is_none_or(|t| !t.is_empty() && !t.contains(char::is_whitespace));
        if !target_ok || !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            let whole = if directive == value { String::new() } else { format!(" in {value:?}") };
            return refuse(format!("{directive:?}{whole} is not a valid directive"));
        }
        count += 1;
    }
    if count == 0 {
        return refuse(format!("{value:?} has no directive (unset RUST_LOG for the default, info)"));
    }
    Ok(())
}

fn bulk_settings(v: &Vars<'_>, approval: bool) -> Result<crate::engine::BulkSettings, ConfigError> {
    let rate =
        v.get("SYSGP_BULK_RATE_PER_SEC").map(|_| v.number("SYSGP_BULK_RATE_PER_SEC", 0, 1, 1_000_000)).transpose()?;
    Ok(crate::engine::BulkSettings {
        workers: v.number("SYSGP_BULK_WORKERS", 8, 1, 256)?,
        rate_per_sec: rate,
        approval,
        file_bytes_max: v.number("SYSGP_BULK_FILE_MAX_MB", 64, 1, 4096)? * 1024 * 1024,
        rows_max: v.number("SYSGP_BULK_ROWS_MAX", 1_000_000, 1, 100_000_000)?,
        total_max: v.number("SYSGP_BULK_TOTAL_MAX", 1_000_000_000_000_000, 1, AMOUNT_MAJOR_CEILING)?,
        breaker_unreachable: v.number("SYSGP_BREAKER_UNREACHABLE", 5, 1, 10_000)?,
        breaker_window: v.number("SYSGP_BREAKER_WINDOW", 100, 1, 100_000)?,
        breaker_min_attempts: v.number("SYSGP_BREAKER_MIN_ATTEMPTS", 20, 1, 100_000)?,
        breaker_failure_percent: v.number("SYSGP_BREAKER_FAILURE_PERCENT", 50, 1, 100)?,
    })
}

/// Applies every rule of SPEC §7 to `key`, already trimmed (a padded placeholder is
/// still a placeholder, and padding does not count towards the length).
fn check_secret_key(key: &str, debug: bool, warnings: &mut Vec<String>) -> Result<SecretKey, ConfigError> {
    debug_assert_eq!(key, key.trim());
    let lower = key.to_lowercase();
    let distinct = key.chars().collect::<std::collections::HashSet<_>>().len();
    let problem = if key.is_empty() {
        Some("is empty".to_owned())
    } else if KNOWN_PLACEHOLDERS.contains(&lower.as_str()) || lower.starts_with("django-insecure-") {
        Some("is a known placeholder value; generate a random key (e.g. `openssl rand -hex 32`)".to_owned())
    } else if key.chars().count() < 32 {
        Some(format!("is {} characters long; at least 32 are required", key.chars().count()))
    } else if distinct < 10 {
        Some(format!("uses only {distinct} distinct characters; at least 10 are required"))
    } else {
        None
    };
    match problem {
        Some(p) if debug && !key.is_empty() => {
            warnings.push(format!("SECRET_KEY {p} (accepted because DEBUG=true)"));
            Ok(SecretKey(key.to_owned()))
        }
        Some(p) => Err(bad("SECRET_KEY", p)),
        None => Ok(SecretKey(key.to_owned())),
    }
}

fn check_sdk_url(url: &str) -> Result<String, ConfigError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        bad("MOJALOOP_SDK_URL", format!("expected an http:// URL such as http://127.0.0.1:4001 (https is not supported by this build; use a local TLS proxy), got {url:?}"))
    })?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(['@', ' ', '?', '#']) {
        return Err(bad("MOJALOOP_SDK_URL", format!("has no valid host: {url:?}")));
    }
    Ok(url.to_owned())
}

fn parse_origins(value: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    value
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let ok = (o.starts_with("http://") || o.starts_with("https://")) && !o.ends_with('/') && o != "*";
            if ok {
                Ok(o.to_owned())
            } else {
                Err(bad(
                    "CORS_ALLOWED_ORIGINS",
                    format!(
                        "expected exact origins such as https://admin.example.com (no path, no wildcard), got {o:?}"
                    ),
                ))
            }
        })
        .collect()
}

fn parse_proxies(value: Option<&str>) -> Result<Vec<IpAddr>, ConfigError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .map_err(|_| bad("SYSGP_TRUSTED_PROXIES", format!("expected comma-separated IP addresses, got {p:?}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_table_and_the_example_env_file_name_every_variable() {
        let readme = include_str!("../README.md");
        let env_file = include_str!("../systemd/sysgp.env.example");
        for name in KNOWN_SYSGP {
            assert!(readme.contains(&format!("| `{name}` |")), "README.md's configuration table lacks {name}");
            assert!(env_file.contains(&format!("{name}=")), "systemd/sysgp.env.example lacks {name}");
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
    const GOOD_KEY: &str = "k3Jx9qLm2Vb7Wc5Zr8Tn4Ys6Ud1Ef0Gh";

    #[test]
    fn secret_key_rules_each_give_a_clear_message() {
        for (key, needle) in [
            ("short-but-varied-1234", "at least 32"),
            ("abababababababababababababababababab", "distinct"),
            ("changeme", "placeholder"),
            ("CHANGEME", "placeholder"),
            ("django-insecure-abcdefghijklmnopqrstuvwxyz0123456789", "placeholder"),
            (PLACEHOLDER_SECRET_KEY, "placeholder"),
        ] {
            let err = Config::from_vars(&vars(&[("SECRET_KEY", key)])).expect_err(key);
            assert_eq!(err.var, "SECRET_KEY");
            assert!(err.problem.contains(needle), "{key}: {}", err.problem);
        }
        let ok = Config::from_vars(&vars(&[("SECRET_KEY", GOOD_KEY)])).expect("good key");
        assert!(ok.secret_key.is_some());
        assert!(!format!("{ok:?}").contains(GOOD_KEY), "Debug must redact the key");
    }

    #[test]
    fn a_padded_secret_key_is_judged_and_used_without_its_padding() {
        for key in [" django-insecure-abcdefghijklmnopqrstuvwxyz0123456789", "your-secret-key        ", "\tchangeme\n"]
        {
            let err = Config::from_vars(&vars(&[("SECRET_KEY", key)])).expect_err(key);
            assert!(err.problem.contains("placeholder"), "{key:?}: {}", err.problem);
        }
        let err = Config::from_vars(&vars(&[("SECRET_KEY", "   short-but-varied-1234       ")])).expect_err("short");
        assert!(err.problem.contains("21 characters"), "{}", err.problem);
        let padded = Config::from_vars(&vars(&[("SECRET_KEY", &format!("  {GOOD_KEY}\n"))])).expect("padded");
        let plain = Config::from_vars(&vars(&[("SECRET_KEY", GOOD_KEY)])).expect("plain");
        assert_eq!(padded.secret_key, plain.secret_key, "the same key as from an --env-file line");
    }

    #[test]
    fn rust_log_accepts_env_logger_directives_and_refuses_anything_else() {
        for ok in ["info", "WARN", "off", "info,sysgp::http=warn", "sysgp=Debug, warn", "info/request", "trace,"] {
            Config::from_vars(&vars(&[("RUST_LOG", ok)])).expect(ok);
        }
        for bad_value in
            ["verbose", "debugg", "info,sysgp=loud", "", " ", ",", "sysgp", "sysgp=", "=info", "a=b=info", "info/x/y"]
        {
            let err = Config::from_vars(&vars(&[("RUST_LOG", bad_value)])).expect_err(bad_value);
            assert_eq!(err.var, "RUST_LOG", "{bad_value:?}");
            assert!(err.problem.contains("target=level"), "{bad_value:?}: {}", err.problem);
        }
    }

    #[test]
    fn an_empty_data_dir_is_refused_and_a_file_is_not_a_data_dir() {
        let err = Config::from_vars(&vars(&[("SYSGP_DATA_DIR", " ")])).expect_err("empty");
        assert_eq!(err.var, "SYSGP_DATA_DIR");
        let unset = Config::from_vars(&vars(&[])).expect("unset");
        assert_eq!(unset.data_dir, PathBuf::from("./data"));
        let file = tempfile::NamedTempFile::new().expect("file");
        for dir in [file.path().to_path_buf(), file.path().join("below")] {
            let c = Config::from_vars(&vars(&[
                ("SECRET_KEY", GOOD_KEY),
                ("MOJALOOP_SDK_URL", "http://127.0.0.1:4001"),
                ("SYSGP_DATA_DIR", &dir.display().to_string()),
            ]))
            .expect("parseable");
            let err = c.check_for_serve().expect_err("a file");
            assert_eq!(err.var, "SYSGP_DATA_DIR");
            assert!(err.problem.contains(&file.path().display().to_string()), "{}", err.problem);
        }
    }

    #[test]
    fn debug_relaxes_the_key_check_with_a_warning() {
        let c = Config::from_vars(&vars(&[("SECRET_KEY", "changeme"), ("DEBUG", "true")])).expect("relaxed");
        assert!(c.key_warnings.iter().any(|w| w.contains("SECRET_KEY")));
        assert!(!c.warnings.iter().any(|w| w.contains("SECRET_KEY")), "shown to every signed-in user");
    }

    #[test]
    fn serve_requires_key_url_and_loopback() {
        let c = Config::from_vars(&vars(&[])).expect("empty is parseable");
        assert_eq!(c.check_for_serve().expect_err("no key").var, "SECRET_KEY");
        let c = Config::from_vars(&vars(&[("SECRET_KEY", GOOD_KEY)])).expect("ok");
        assert_eq!(c.check_for_serve().expect_err("no url").var, "MOJALOOP_SDK_URL");
        let c = Config::from_vars(&vars(&[
            ("SECRET_KEY", GOOD_KEY),
            ("MOJALOOP_SDK_URL", "http://127.0.0.1:4001"),
            ("SYSGP_BIND", "0.0.0.0:8000"),
        ]))
        .expect("ok");
        assert_eq!(c.check_for_serve().expect_err("public bind").var, "SYSGP_BIND");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("SYSGP_BIND", "localhost"),
            ("SYSGP_CACHE_MB", "lots"),
            ("SYSGP_SDK_MODE", "manual"),
            ("SYSGP_SDK_TIMEOUT_SECS", "0"),
            ("SYSGP_AMOUNT_MAX", "-1"),
            ("MOJALOOP_SDK_URL", "ftp://x"),
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("DEBUG", "maybe"),
            ("SYSGP_TRUSTED_PROXIES", "10.0.0.0/8"),
        ] {
            let err = Config::from_vars(&vars(&[(var, value)])).expect_err(var);
            assert_eq!(err.var, var);
            assert!(err.to_string().starts_with(var));
        }
    }

    #[test]
    fn unknown_sysgp_variables_are_warned_about() {
        let c = Config::from_vars(&vars(&[("SYSGP_BINDD", "x")])).expect("parseable");
        assert!(c.warnings.iter().any(|w| w.contains("SYSGP_BINDD")));
    }

    #[test]
    fn env_files_allow_comments_quotes_and_export() {
        let parsed = parse_env_file("# c\n\nexport A=1\nB=\"two words\"\nC='x'\n").expect("valid");
        assert_eq!(parsed.get("B").map(String::as_str), Some("two words"));
        assert_eq!(parsed.len(), 3);
        assert_eq!(parse_env_file("A=1\nnot a pair\n"), Err(2));
    }
}
