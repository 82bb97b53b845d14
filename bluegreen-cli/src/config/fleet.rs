//! `fleet.toml`: the hosts of a fleet, each a normal `bluegreen.toml`, and how they go (canary,
//! batch size). Refusals say the file, line and column, as for `bluegreen.toml`.
//!
//! ```toml
//! [fleet]
//! name = "shop"          # the fleet's lock and journal (`<state_dir>/<name>.fleet.jsonl`)
//! canary = "a"           # switched first, alone (default: the first host)
//! batch = 3              # then this many hosts at a time
//! state_dir = ".bluegreen-fleet"   # relative to this file (default)
//!
//! [[host]]
//! name = "a"
//! config = "hosts/a.toml"          # relative to this file
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::load::{deserialize, line_column, ConfigError, Refusal};
use super::{load, Loaded, PauseConfig, PromotionConfig, StepConfig, StrategyConfig};

/// A loaded fleet file: the plan and every host's loaded config, in order.
#[derive(Debug)]
pub struct LoadedFleet {
    /// The fleet's name.
    pub name: bluegreen::AppName,
    /// The canary host, if named.
    pub canary: Option<String>,
    /// How many hosts switch at once after the canary.
    pub batch: usize,
    /// Where the fleet journal and lock live.
    pub state_dir: PathBuf,
    /// Each host's name and config.
    pub hosts: Vec<(String, Loaded)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    fleet: FleetTable,
    #[serde(default)]
    host: Vec<HostTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetTable {
    name: bluegreen::AppName,
    #[serde(default)]
    canary: Option<Spanned<String>>,
    batch: Spanned<usize>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostTable {
    name: Spanned<String>,
    config: PathBuf,
}

/// Reads `path` and every host config it names. Blocking (small files).
///
/// # Errors
/// [`ConfigError`] for the fleet file (syntax, unknown keys, a batch of 0, no host, a host name
/// given twice or invalid, a canary that is not a host, two hosts sharing a journal) or for a host
/// config (its own file and position), including a host whose strategy does not wait for approval
/// before moving traffic (a fleet provisions every host first, then switches them in batches).
pub fn load_fleet(path: &Path) -> Result<LoadedFleet, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: FleetFile = deserialize(&text).map_err(|e| e.at(path))?;
    let refuse = |span: Option<std::ops::Range<usize>>, key: &str, message: String| {
        Refusal {
            at: span.map(|s| line_column(&text, s.start)),
            key: Some(key.to_owned()),
            message,
        }
        .at(path)
    };
    if *file.fleet.batch.get_ref() == 0 {
        return Err(refuse(
            Some(file.fleet.batch.span()),
            "fleet.batch",
            "batch = 0: a batch holds at least one host".to_owned(),
        ));
    }
    if file.host.is_empty() {
        return Err(refuse(
            None,
            "host",
            "no [[host]]: a fleet needs at least one".to_owned(),
        ));
    }
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut hosts = Vec::with_capacity(file.host.len());
    let mut journals: HashMap<(PathBuf, String), String> = HashMap::new();
    for (i, host) in file.host.iter().enumerate() {
        let name = host.name.get_ref().clone();
        let key = format!("host[{i}].name");
        if bluegreen::AppName::new(name.clone()).is_err() {
            return Err(refuse(
                Some(host.name.span()),
                &key,
                format!("{name:?}: a host name is letters, digits, '-' and '_'"),
            ));
        }
        if hosts.iter().any(|(n, _)| *n == name) {
            return Err(refuse(Some(host.name.span()), &key, format!("{name:?} is given twice")));
        }
        let loaded = load(&base.join(&host.config))?;
        check_gate(&loaded)?;
        let journal = (loaded.state_dir(), loaded.config.app.to_string());
        if let Some(other) = journals.insert(journal.clone(), name.clone()) {
            return Err(refuse(
                Some(host.name.span()),
                &key,
                format!(
                    "hosts {other:?} and {name:?} share the journal of app {} in {}: each host needs its own \
                     state_dir",
                    journal.1,
                    journal.0.display()
                ),
            ));
        }
        hosts.push((name, loaded));
    }
    if let Some(canary) = &file.fleet.canary {
        if !hosts.iter().any(|(n, _)| n == canary.get_ref()) {
            return Err(refuse(
                Some(canary.span()),
                "fleet.canary",
                format!("{:?} is not a [[host]]", canary.get_ref()),
            ));
        }
    }
    let state_dir = file
        .fleet
        .state_dir
        .unwrap_or_else(|| PathBuf::from(".bluegreen-fleet"));
    Ok(LoadedFleet {
        name: file.fleet.name,
        canary: file.fleet.canary.map(Spanned::into_inner),
        batch: file.fleet.batch.into_inner(),
        state_dir: if state_dir.is_absolute() {
            state_dir
        } else {
            base.join(state_dir)
        },
        hosts,
    })
}

/// Refuses a host whose strategy would move traffic without waiting for approval: the fleet
/// provisions every host first and switches them itself, a batch at a time.
fn check_gate(loaded: &Loaded) -> Result<(), ConfigError> {
    let waits = match &loaded.config.strategy {
        StrategyConfig::BlueGreen(bg) => bg.promotion == PromotionConfig::Manual,
        StrategyConfig::Canary(canary) => canary
            .steps
            .iter()
            .take_while(|s| !matches!(s, StepConfig::Weight(_)))
            .any(|s| matches!(s, StepConfig::Pause(PauseConfig::Approval))),
    };
    if waits {
        return Ok(());
    }
    let text = std::fs::read_to_string(&loaded.path).unwrap_or_default();
    Err(Refusal {
        at: text.find("[strategy").map(|o| line_column(&text, o)),
        key: Some("strategy".to_owned()),
        message: "a fleet host must wait for approval before traffic moves: \
                  strategy.blue_green = { promotion = \"manual\" } (or a canary whose first steps include \
                  pause = \"approval\")"
            .to_owned(),
    }
    .at(&loaded.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = r#"app = "shop"
state_dir = "state-NAME"
[docker]
image = { kind = "tagged", repository = "shop" }
container_port = 8080
[router.nginx]
upstream_file = "/tmp/shop-NAME.conf"
upstream_name = "shop"
[probe]
tcp = {}
[strategy]
blue_green = { promotion = "PROMOTION" }
"#;

    /// Writes hosts a and b (b with `promotion_b`) and `fleet` as fleet.toml; loads it.
    fn load_with(fleet: &str, promotion_b: &str, same_state: bool) -> Result<LoadedFleet, String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, promotion) in [("a", "manual"), ("b", promotion_b)] {
            let state = if same_state { "a" } else { name };
            let text = HOST.replace("NAME", state).replace("PROMOTION", promotion);
            std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
        }
        let path = dir.path().join("fleet.toml");
        std::fs::write(&path, fleet).unwrap();
        load_fleet(&path).map_err(|e| e.to_string())
    }

    const HOSTS: &str = "[[host]]\nname = \"a\"\nconfig = \"a.toml\"\n[[host]]\nname = \"b\"\nconfig = \"b.toml\"\n";

    #[test]
    fn a_good_fleet_file_loads() {
        let fleet = load_with(
            &format!("[fleet]\nname = \"shop\"\ncanary = \"b\"\nbatch = 2\n{HOSTS}"),
            "manual",
            false,
        )
        .unwrap();
        assert_eq!(
            (fleet.canary.as_deref(), fleet.batch, fleet.hosts.len()),
            (Some("b"), 2, 2)
        );
        assert!(fleet.state_dir.ends_with(".bluegreen-fleet"));
    }

    #[test]
    fn refusals_name_the_file_line_column_and_value() {
        let err = load_with(
            &format!("[fleet]\nname = \"shop\"\nbatch = 0\n{HOSTS}"),
            "manual",
            false,
        )
        .unwrap_err();
        assert!(err.contains("fleet.toml:3:9: `fleet.batch`: batch = 0"), "{err}");
        let err = load_with(
            &format!("[fleet]\nname = \"shop\"\ncanary = \"z\"\nbatch = 1\n{HOSTS}"),
            "manual",
            false,
        )
        .unwrap_err();
        assert!(
            err.contains("fleet.toml:3:10: `fleet.canary`: \"z\" is not a [[host]]"),
            "{err}"
        );
        let twice = "[[host]]\nname = \"a\"\nconfig = \"a.toml\"\n[[host]]\nname = \"a\"\nconfig = \"b.toml\"\n";
        let err = load_with(
            &format!("[fleet]\nname = \"shop\"\nbatch = 1\n{twice}"),
            "manual",
            false,
        )
        .unwrap_err();
        assert!(
            err.contains("fleet.toml:8:8: `host[1].name`: \"a\" is given twice"),
            "{err}"
        );
        let err = load_with(
            &format!("[fleet]\nname = \"shop\"\nbatch = 1\nbtach = 2\n{HOSTS}"),
            "manual",
            false,
        )
        .unwrap_err();
        assert!(err.contains("fleet.toml:4:1") && err.contains("btach"), "{err}");
    }

    #[test]
    fn a_host_that_would_switch_on_its_own_or_share_a_journal_is_refused() {
        let fleet = format!("[fleet]\nname = \"shop\"\nbatch = 1\n{HOSTS}");
        let err = load_with(&fleet, "auto", false).unwrap_err();
        assert!(
            err.contains("b.toml:11:1: `strategy`: a fleet host must wait for approval"),
            "{err}"
        );
        let err = load_with(&fleet, "manual", true).unwrap_err();
        assert!(err.contains("share the journal of app shop"), "{err}");
    }
}
