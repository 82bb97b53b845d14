//! Images from a real registry (Debian's `docker-registry` on loopback, TLS from a test CA the
//! engine trusts for it, htpasswd basic auth): a pull with credentials deploys and the snapshot
//! and journal carry the digest; no credentials, a wrong password, a missing tag and a stopped
//! registry are each a clear typed error that changes nothing; the password shows nowhere; a
//! rollback to a pinned release works without the registry. And one anonymous registry.

mod common;

use std::sync::Arc;

use bluegreen_core::testing::InMemoryRouter;
use bluegreen_core::{Endpoint, Environment, Error, ReleaseCheck, Router, Slot, SlotStatus};
use bluegreen_docker::{DockerConfig, DockerEnvironment, ImageSource, Pull, RegistryCredentials};
use bluegreen_testkit::real;
use bluegreen_testkit::registry::RegistryProcess;
use bollard::auth::DockerCredentials;
use common::fixtures::Connection;
use common::{assert_serves, release, setup, Fixture};

const USER: &str = "ci";
const PASSWORD: &str = "pw-7f3a9c-never-shown";
const WRONG: &str = "wrong-pw-51b2e0";

fn registry(auth: bool) -> Option<RegistryProcess> {
    match RegistryProcess::start(auth.then_some((USER, PASSWORD))) {
        Ok(r) => Some(r),
        Err(why) => {
            real::unavailable("docker-registry", why);
            None
        }
    }
}

/// Pushes demo `version` to `repo` and removes the local copies; the digest.
async fn push(fx: &mut Fixture, repo: &str, version: &str, credentials: Option<DockerCredentials>) -> String {
    let connection = Connection {
        engine: fx.engine.clone(),
        docker: fx.docker.clone(),
    };
    fx.images
        .push(&connection, repo, version, credentials)
        .await
        .expect("push to the test registry")
}

fn credentials(password: &str, registry: &RegistryProcess) -> DockerCredentials {
    DockerCredentials {
        username: Some(USER.into()),
        password: Some(password.into()),
        serveraddress: Some(registry.host()),
        ..Default::default()
    }
}

fn config(fx: &Fixture, repo: &str, pull: Pull, login: Option<RegistryCredentials>) -> DockerConfig {
    let mut config = fx.config();
    config.image = ImageSource::tagged(repo);
    let config = config.pull(pull);
    match login {
        Some(login) => config.registry(login),
        None => config,
    }
}

/// The slot with all traffic, and its endpoint.
async fn live(router: &InMemoryRouter) -> (Slot, Endpoint) {
    let routes = router.current().await.unwrap().expect("routes");
    let slot = routes.split().sole().expect("one slot has all traffic");
    (slot, routes.endpoints(slot).expect("its endpoint").first().clone())
}

/// The slot's container id and status, as the engine says.
async fn slot_state(env: &DockerEnvironment, slot: Slot) -> (Option<String>, SlotStatus) {
    let id = env
        .containers()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.labels.slot == slot)
        .map(|c| c.id);
    (id, env.status(slot).await.unwrap())
}

#[tokio::test]
async fn pulls_with_credentials_pins_the_digest_and_refuses_clearly() {
    let Some(mut fx) = setup("reg-auth", &["v1", "v2"]).await else {
        return;
    };
    let Some(mut registry) = registry(true) else {
        return;
    };
    let host = registry.host();
    let repo = format!("{host}/{}", fx.images.repository());
    let good = Some(credentials(PASSWORD, &registry));
    let v1_digest = push(&mut fx, &repo, "v1", good.clone()).await;
    push(&mut fx, &repo, "v2", good).await;
    let login = RegistryCredentials::new(USER, PASSWORD);

    // No credentials against the auth registry: refused, naming the registry; nothing created.
    let anonymous = fx.env(config(&fx, &repo, Pull::Always, None)).await;
    let err = anonymous.deploy(Slot::Blue, &release("v1")).await.unwrap_err();
    assert!(matches!(err, Error::Backend { temporary: false, .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("registry {host} refused an anonymous pull")),
        "{err}"
    );
    assert_eq!(slot_state(&anonymous, Slot::Blue).await, (None, SlotStatus::Absent));
    let checked = anonymous.check_release(&release("v1")).await.unwrap_err();
    assert!(checked.to_string().contains(&host), "{checked}");

    // A wrong password: refused, naming the registry and the user, never a password.
    let wrong = fx
        .env(config(
            &fx,
            &repo,
            Pull::Always,
            Some(RegistryCredentials::new(USER, WRONG)),
        ))
        .await;
    for err in [
        wrong.deploy(Slot::Blue, &release("v1")).await.unwrap_err(),
        wrong.check_release(&release("v1")).await.unwrap_err(),
    ] {
        let text = format!("{} {err:?}", err.chain());
        assert!(matches!(err, Error::Backend { temporary: false, .. }), "{text}");
        assert!(
            text.contains(&format!("registry {host} refused the credentials of user {USER}")),
            "{text}"
        );
        assert!(!text.contains(WRONG) && !text.contains(PASSWORD), "{text}");
    }
    assert_eq!(slot_state(&wrong, Slot::Blue).await, (None, SlotStatus::Absent));

    // With credentials: deployed through the engine, pinned by digest, journaled.
    let env = fx.env(config(&fx, &repo, Pull::Always, Some(login.clone()))).await;
    assert_eq!(env.check_release(&release("v1")).await.unwrap(), ReleaseCheck::Present);
    let router = Arc::new(InMemoryRouter::new());
    let deployer = fx.deployer(&env, router.clone());
    deployer.deploy(release("v1")).await.expect("v1 from the registry");
    let pinned = format!("{repo}@{v1_digest}");
    let snapshot = env.snapshot(Slot::Blue).await.unwrap().expect("blue runs v1");
    assert_eq!(snapshot.digest(), Some(pinned.as_str()));
    let history = deployer.history(1).await.unwrap();
    let journaled = history[0].snapshot().expect("the deployment's snapshot");
    assert_eq!(journaled.digest(), Some(pinned.as_str()));
    let blue = slot_state(&env, Slot::Blue).await.0;
    assert!(blue.is_some());
    assert_serves(&live(&router).await.1, "v1").await;

    // The password is nowhere: config, environment, snapshot, journal.
    let journal = serde_json::to_string(&history).unwrap();
    let shown = format!("{:?} {env:?} {snapshot} {journal}", env.config());
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(journal.contains(&pinned), "{journal}");

    // A tag missing from the registry: NotFound naming it; blue untouched, green not created.
    let err = env.deploy(Slot::Green, &release("v9")).await.unwrap_err();
    let missing = format!("{repo}:v9");
    assert!(
        matches!(&err, Error::NotFound { name, .. } if *name == missing),
        "{err:?}"
    );
    let checked = env.check_release(&release("v9")).await.unwrap_err();
    assert!(
        matches!(&checked, Error::NotFound { name, .. } if *name == missing),
        "{checked:?}"
    );
    assert_eq!(slot_state(&env, Slot::Green).await, (None, SlotStatus::Absent));
    assert_eq!(slot_state(&env, Slot::Blue).await.0, blue);

    deployer.deploy(release("v2")).await.expect("v2 from the registry");

    // The registry goes away: a temporary error naming it; nothing changed.
    registry.stop();
    let green = slot_state(&env, Slot::Green).await;
    let err = env.deploy(Slot::Blue, &release("v1")).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert!(
        err.to_string().contains(&format!("registry {host} unreachable")),
        "{err}"
    );
    assert_eq!(slot_state(&env, Slot::Green).await, green);

    // A pinned release rolls back without the registry, and still reports its digest.
    deployer.rollback_to(release("v1")).await.expect("rollback to v1");
    let (slot, endpoint) = live(&router).await;
    assert_serves(&endpoint, "v1").await;
    let snapshot = env.snapshot(slot).await.unwrap().expect("v1 runs");
    assert_eq!(snapshot.digest(), Some(pinned.as_str()));

    // `missing` needs no registry once the image is there, and pins it by digest too.
    let local = fx.env(config(&fx, &repo, Pull::Missing, Some(login))).await;
    let idle = slot.other();
    local.deploy(idle, &release("v1")).await.expect("v1, present");
    let snapshot = local.snapshot(idle).await.unwrap().expect("v1 runs");
    assert_eq!(snapshot.digest(), Some(pinned.as_str()));
}

#[tokio::test]
async fn pulls_from_an_anonymous_registry_without_credentials() {
    let Some(mut fx) = setup("reg-anon", &["v1"]).await else {
        return;
    };
    let Some(registry) = registry(false) else {
        return;
    };
    let repo = format!("{}/{}", registry.host(), fx.images.repository());
    let digest = push(&mut fx, &repo, "v1", None).await;
    let env = fx.env(config(&fx, &repo, Pull::Missing, None)).await;
    assert_eq!(env.check_release(&release("v1")).await.unwrap(), ReleaseCheck::Present);
    let endpoint = env.deploy(Slot::Green, &release("v1")).await.expect("v1 pulled");
    assert_serves(endpoint.first(), "v1").await;
    let snapshot = env.snapshot(Slot::Green).await.unwrap().expect("green runs v1");
    assert_eq!(snapshot.digest(), Some(format!("{repo}@{digest}").as_str()));
}
