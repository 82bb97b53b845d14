//! Unit tests: the template, and answers in Prometheus's format from a local HTTP listener (a
//! double of the response format only; tests against a real Prometheus are in
//! `examples/tests/prometheus_canary.rs`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::model::{AppName, Endpoint, Release, Slot, Timestamp};
use crate::probe::ProbeContext;

const ERROR_RATE: &str = r#"sum(rate(req{app="{app}",version="{release}",code=~"5.."}[{window}]))"#;

fn target() -> ProbeTarget {
    let context =
        ProbeContext::new("shop-1-2-3", AppName::new("shop").unwrap(), Release::new("v3").unwrap()).weight(10);
    ProbeTarget::new(Slot::Green, Endpoint::new("127.0.0.1", 8081).unwrap()).with_context(context)
}

fn since(ago: Duration) -> Option<Timestamp> {
    Some(Timestamp::from(SystemTime::now() - ago))
}

#[test]
fn placeholders_are_filled_from_the_context_and_matchers_stay() {
    let probe = PrometheusAnalysis::new("http://127.0.0.1:9090", ERROR_RATE)
        .unwrap()
        .min_window(Duration::from_secs(5));
    assert_eq!(
        probe.query_for(&target()).unwrap(),
        r#"sum(rate(req{app="shop",version="v3",code=~"5.."}[5s]))"#
    );
    let all = PrometheusAnalysis::new("http://p:9090/", "x{{slot}} {deployment} {weight}").unwrap();
    assert_eq!(all.query_for(&target()).unwrap(), "x{green} shop-1-2-3 10");
}

#[test]
fn the_window_counts_from_when_the_slot_took_traffic_rounded_up() {
    let probe = PrometheusAnalysis::new("http://127.0.0.1:9090", "r[{window}]")
        .unwrap()
        .min_window(Duration::from_millis(2500));
    let mut t = target();
    assert_eq!(
        probe.query_for(&t).unwrap(),
        "r[3s]",
        "no traffic yet: the minimum, rounded up"
    );
    t.context = t.context.traffic_since(since(Duration::from_millis(90_200)));
    assert_eq!(probe.query_for(&t).unwrap(), "r[91s]");
    t.context = t.context.traffic_since(since(Duration::from_secs(1)));
    assert_eq!(probe.query_for(&t).unwrap(), "r[3s]", "shorter than the minimum");
}

#[test]
fn values_are_escaped_for_promql_strings() {
    assert_eq!(template::Template::parse("a".into()).unwrap().text(), "a");
    let mut t = target();
    t.context.deployment = Some("a\"b\\c'd\ne".to_string());
    let probe = PrometheusAnalysis::new("http://p:9090", r#"x{id="{deployment}"}"#).unwrap();
    assert_eq!(probe.query_for(&t).unwrap(), r#"x{id="a\"b\\c'd\ne"}"#);
}

#[test]
fn unknown_placeholders_bad_urls_and_empty_queries_are_refused_by_name() {
    let err = PrometheusAnalysis::new("http://p:9090", "x{job=\"{jbo}\"} {relaese} {app}").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("prometheus query"), "{text}");
    assert!(text.contains("unknown placeholder {jbo}, {relaese}"), "{text}");
    assert!(text.contains("known: {app}, {slot}"), "{text}");
    for url in [
        "ftp://p:9090",
        "not a url",
        "http://p:9090/?x=1",
        "http://p:9090#f",
        "http://admin:hunter2@p:9090",
    ] {
        let err = PrometheusAnalysis::new(url, "up").unwrap_err();
        assert!(err.to_string().contains("prometheus url"), "{url}: {err}");
        assert!(
            !err.to_string().contains("hunter2"),
            "the password is not repeated: {err}"
        );
    }
    assert!(PrometheusAnalysis::new("http://p:9090", "  ")
        .unwrap_err()
        .to_string()
        .contains("empty"));
}

#[tokio::test]
async fn a_target_without_a_deployment_is_a_provider_error_naming_what_is_missing() {
    let probe = PrometheusAnalysis::new("http://127.0.0.1:9", ERROR_RATE).unwrap();
    let bare = ProbeTarget::new(Slot::Blue, Endpoint::new("127.0.0.1", 8081).unwrap());
    let ProbeOutcome::ProviderError(detail) = probe.check(&bare).await else {
        panic!("expected a provider error")
    };
    assert!(detail.contains("{app}") && detail.contains("no value"), "{detail}");
}

/// Answers every request with `status` and `body`, and keeps each request line.
async fn prometheus_answering(status: u16, body: &'static str) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = vec![0; 8192];
            let n = stream.read(&mut head).await.unwrap_or(0);
            let line = String::from_utf8_lossy(&head[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            seen.lock().unwrap().push(line);
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (addr, requests)
}

async fn check_against(
    status: u16,
    body: &'static str,
    probe: impl FnOnce(String) -> PrometheusAnalysis,
) -> ProbeOutcome {
    let (addr, _) = prometheus_answering(status, body).await;
    probe(format!("http://{addr}")).check(&target()).await
}

fn error_rate(url: String) -> PrometheusAnalysis {
    PrometheusAnalysis::new(&url, ERROR_RATE).unwrap().fails_above(0.05)
}

const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
    {"metric":{"version":"v3"},"value":[1700000000.1,"0.01"]},
    {"metric":{"version":"v3","code":"503"},"value":[1700000000.1,"0.21"]}]}}"#;

#[tokio::test]
async fn every_series_must_pass_and_a_failing_one_is_named() {
    let ProbeOutcome::Unhealthy(detail) = check_against(200, VECTOR, error_rate).await else {
        panic!("expected unhealthy")
    };
    assert!(
        detail.starts_with(r#"0.21 > 0.05 for {code="503",version="v3"} (query: sum(rate(req{app="shop""#),
        "{detail}"
    );
    let lenient = |url: String| error_rate(url).fails_above(0.25);
    assert_eq!(check_against(200, VECTOR, lenient).await, ProbeOutcome::Healthy);
    let at_least = |url: String| error_rate(url).fails_below(0.05);
    let ProbeOutcome::Unhealthy(detail) = check_against(200, VECTOR, at_least).await else {
        panic!("expected unhealthy")
    };
    assert!(detail.starts_with(r#"0.01 < 0.05 for {version="v3"}"#), "{detail}");
}

#[tokio::test]
async fn a_scalar_is_compared_too_and_the_query_is_sent_encoded() {
    let (addr, requests) = prometheus_answering(
        200,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"0.04"]}}"#,
    )
    .await;
    let probe = PrometheusAnalysis::new(&format!("http://{addr}/prefix/"), ERROR_RATE)
        .unwrap()
        .fails_above(0.05)
        .min_window(Duration::from_secs(7));
    assert_eq!(probe.check(&target()).await, ProbeOutcome::Healthy);
    let line = requests.lock().unwrap()[0].clone();
    assert!(
        line.starts_with("GET /prefix/api/v1/query?query=sum%28rate%28req%7Bapp%3D%22shop%22"),
        "{line}"
    );
    assert!(line.contains("%5B7s%5D"), "{line}");
}

#[tokio::test]
async fn nothing_that_is_not_a_number_within_the_threshold_passes() {
    let cases: [(u16, &'static str, &str); 7] = [
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            "returned no series",
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#,
            "returned NaN for {}",
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#,
            "returned inf",
        ),
        (
            400,
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#,
            "HTTP 400, status \"error\": bad_data: parse error at char 5",
        ),
        (503, "Service Unavailable", "HTTP 503: \"Service Unavailable\""),
        (
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            "a matrix result",
        ),
        (200, "<html>", "not Prometheus API JSON"),
    ];
    for (status, body, expected) in cases {
        let outcome = check_against(status, body, error_rate).await;
        let ProbeOutcome::ProviderError(detail) = &outcome else {
            panic!("{body}: expected a provider error, got {outcome:?}")
        };
        assert!(detail.contains(expected), "{body}: {detail}");
        assert!(
            detail.contains("query \"sum(rate(req{app=\\\"shop\\\""),
            "names the query: {detail}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_prometheus_is_a_provider_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let outcome = error_rate(format!("http://{addr}")).check(&target()).await;
    let ProbeOutcome::ProviderError(detail) = outcome else {
        panic!("expected a provider error")
    };
    assert!(detail.contains("connection refused"), "{detail}");
    let nan = PrometheusAnalysis::new(&format!("http://{addr}"), "up")
        .unwrap()
        .fails_above(f64::NAN);
    assert!(matches!(nan.check(&target()).await, ProbeOutcome::ProviderError(d) if d.contains("NaN")));
}

#[test]
fn describe_shows_the_template_and_threshold() {
    let probe = error_rate("http://p:9090".into());
    assert_eq!(probe.describe(), format!("prometheus {ERROR_RATE} ≤ 0.05"));
    assert!(probe.to_string().contains("window ≥ 1m, timeout 1s 500ms"), "{probe}");
    assert!(Threshold::AtLeast(1.0).passes(1.0) && !Threshold::AtMost(1.0).passes(f64::NAN));
}

#[tokio::test]
async fn a_prometheus_that_does_not_answer_in_time_is_a_provider_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // accepted, never answered
        }
    });
    let probe = error_rate(format!("http://{addr}")).timeout(Duration::from_millis(200));
    let ProbeOutcome::ProviderError(detail) = probe.check(&target()).await else {
        panic!("expected a provider error")
    };
    assert!(detail.contains("timed out after 200ms"), "{detail}");
}
