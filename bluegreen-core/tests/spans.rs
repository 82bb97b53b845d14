//! The engine's spans name the deployment, so what a backend logs can be traced back to it.
#![cfg(feature = "testing")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{AppName, Deployer, HealthPolicy, Release, Retirement};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span's name and fields, as recorded when it was created.
#[derive(Debug, Clone)]
struct SpanFields {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

impl Visit for SpanFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.fields.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields.insert(field.name().to_owned(), value.to_owned());
    }
}

/// An event's message and the spans it happened in, innermost first.
type Seen = (String, Vec<SpanFields>);

/// Every event whose message starts with "memory: ", with its spans.
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<Seen>>>,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = SpanFields {
            name: attrs.metadata().name(),
            fields: BTreeMap::new(),
        };
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if !message.0.starts_with("memory: ") {
            return;
        }
        let scope = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .filter_map(|span| span.extensions().get::<SpanFields>().cloned())
                    .collect()
            })
            .unwrap_or_default();
        self.events.lock().unwrap().push((message.0, scope));
    }
}

#[tokio::test]
async fn backend_events_nest_under_a_span_naming_the_deployment() {
    let recorder = Recorder::default();
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));

    let env = InMemoryEnvironment::new();
    let deployer = Deployer::builder(AppName::new("shop").unwrap())
        .environment(Arc::new(env.clone()))
        .router(Arc::new(InMemoryRouter::new()))
        .probe(env.health_probe())
        .policy(HealthPolicy::default().interval(Duration::from_millis(5)))
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::ZERO)
                .stop_grace(Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let report = deployer.deploy(Release::new("v1").unwrap()).await.unwrap();
    let d = &report.deployment;

    let events = recorder.events.lock().unwrap().clone();
    for expected in ["memory: deploy", "memory: apply"] {
        let (_, scope) = events
            .iter()
            .find(|(message, _)| message.starts_with(expected))
            .unwrap_or_else(|| panic!("no {expected:?} event in {events:#?}"));
        let deployment = scope
            .iter()
            .find(|s| s.name == "deployment")
            .unwrap_or_else(|| panic!("{expected:?} is not inside a deployment span: {scope:#?}"));
        assert_eq!(deployment.fields["deployment"], d.id());
        assert_eq!(deployment.fields["app"], "shop");
        assert_eq!(deployment.fields["release"], "v1");
        assert_eq!(deployment.fields["slot"], d.target().to_string());
        assert!(
            scope.iter().any(|s| s.name == "phase"),
            "{expected:?} is not inside a phase span: {scope:#?}"
        );
    }
}
