//! What the CLI prints of a config: everything but the values of `env` entries.

use serde_json::{json, Value};

use super::{Config, RouterConfig};

/// The text that replaces every `env` value.
pub const REDACTED: &str = "<redacted>";

/// The effective backend configs as JSON (what `validate --json` prints), with every `env`
/// value replaced by [`REDACTED`]: the keys show, the values never do.
pub fn redacted_json(config: &Config) -> Value {
    let mut docker = serde_json::to_value(&config.docker.0).unwrap_or(Value::Null);
    redact_env(&mut docker);
    let router = match &config.router {
        RouterConfig::Nginx(nginx) => json!({ "nginx": nginx }),
        RouterConfig::Traefik(traefik) => json!({ "traefik": traefik.0 }),
    };
    json!({
        "app": config.app,
        "docker": docker,
        "router": router,
        "health": config.health,
        "retirement": config.retirement,
    })
}

/// Replaces the value of every entry of every `env` object, at any depth.
fn redact_env(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key == "env" {
                    if let Value::Object(env) = inner {
                        env.values_mut().for_each(|v| *v = Value::String(REDACTED.to_owned()));
                    }
                } else {
                    redact_env(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_env),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_replaced_at_any_depth() {
        let mut v = json!({"env": {"A": "secret"}, "x": [{"env": {"B": "also"}}], "keep": "me"});
        redact_env(&mut v);
        let text = v.to_string();
        assert!(!text.contains("secret") && !text.contains("also"), "{text}");
        assert!(text.contains("\"A\"") && text.contains("me"), "{text}");
    }
}
