//! Reading a Prometheus HTTP API answer to an instant query (`/api/v1/query`).

use serde::Deserialize;
use serde_json::Value;

/// One value of a query result, with its series' labels (`{}` for a scalar).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    /// The series' labels, as PromQL writes them: `{code="500",version="v3"}`.
    pub(super) labels: String,
    /// The value (may be NaN or infinite: Prometheus writes those as strings too).
    pub(super) value: f64,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: std::collections::BTreeMap<String, String>,
    value: (Value, String),
}

/// The samples of an answer with HTTP `status` and `body`, or what was wrong with it, in words.
///
/// A vector gives one sample per series (none when it is empty), a scalar one sample; any other
/// result type, an HTTP error, `"status": "error"` or a body that is not the API's JSON is an
/// error naming what came back.
pub(super) fn parse(status: u16, body: &[u8]) -> Result<Vec<Sample>, String> {
    let answer: Answer = match serde_json::from_slice(body) {
        Ok(answer) => answer,
        Err(err) if (200..300).contains(&status) => {
            return Err(format!(
                "the answer is not Prometheus API JSON ({err}): {}",
                excerpt(body)
            ))
        }
        Err(_) => return Err(format!("HTTP {status}: {}", excerpt(body))),
    };
    if answer.status != "success" {
        return Err(format!(
            "HTTP {status}, status {:?}: {}: {}",
            answer.status,
            answer.error_type.as_deref().unwrap_or("no errorType"),
            answer.error.as_deref().unwrap_or("no error message")
        ));
    }
    let data = answer.data.ok_or_else(|| "status success without data".to_string())?;
    match data.result_type.as_str() {
        "vector" => {
            let series: Vec<Series> = serde_json::from_value(data.result)
                .map_err(|err| format!("a vector result that does not read as one: {err}"))?;
            series
                .into_iter()
                .map(|s| {
                    Ok(Sample {
                        labels: labels(&s.metric),
                        value: number(&s.value.1)?,
                    })
                })
                .collect()
        }
        "scalar" => {
            let (_, value): (Value, String) = serde_json::from_value(data.result)
                .map_err(|err| format!("a scalar result that does not read as one: {err}"))?;
            Ok(vec![Sample {
                labels: "{}".to_string(),
                value: number(&value)?,
            }])
        }
        other => Err(format!(
            "a {other} result; the query must return an instant vector or a scalar"
        )),
    }
}

/// A sample value as Prometheus writes it: a decimal, `NaN`, `+Inf` or `-Inf`.
fn number(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .map_err(|_| format!("the value {text:?} is not a number"))
}

fn labels(metric: &std::collections::BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = metric.iter().map(|(name, value)| format!("{name}={value:?}")).collect();
    format!("{{{}}}", pairs.join(","))
}

/// The start of `body`, for messages.
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let more = if body.len() > MAX { "…" } else { "" };
    format!("{:?}{more}", text.trim())
}
