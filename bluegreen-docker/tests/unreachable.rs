//! An engine that cannot be reached: the error names the socket and what the OS said. No
//! engine is needed (the sockets are made up in a temporary directory).

use bluegreen_core::{AppName, Error};
use bluegreen_docker::{DockerConfig, DockerEnvironment, Engine, ImageSource};

fn config(socket: &std::path::Path) -> DockerConfig {
    DockerConfig::new(AppName::new("shop").unwrap(), ImageSource::tagged("shop/web"), 8080)
        .socket(socket)
        .env("API_TOKEN", "very-secret-value")
}

#[tokio::test]
async fn a_missing_socket_names_the_path_and_the_os_cause() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let err = DockerEnvironment::connect(config(&socket)).await.unwrap_err();
    let text = err.chain().to_string();
    assert!(matches!(err, Error::Backend { temporary: true, .. }), "{err:?}");
    // What the OS said is the source, not repeated in the message.
    let os = std::error::Error::source(&err).map(|s| s.to_string());
    assert!(os.as_deref().is_some_and(|os| os.ends_with("(os error 2)")), "{os:?}");
    assert!(!err.to_string().contains("os error"), "repeated: {err}");
    assert!(
        text.contains(&format!("engine at unix://{} unreachable", socket.display())),
        "{text}"
    );
    assert!(text.contains("(os error 2)"), "{text}");
    assert!(!text.contains("very-secret-value"), "{text}");
}

#[tokio::test]
async fn a_socket_nobody_listens_on_is_connection_refused() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let err = DockerEnvironment::connect(config(&socket)).await.unwrap_err();
    let text = err.chain().to_string();
    assert!(err.is_temporary(), "{err:?}");
    assert!(
        !err.to_string().contains("os error"),
        "the message repeats its source: {err}"
    );
    assert!(
        text.contains(&format!("unix://{}", socket.display())) && text.contains("(os error 111)"),
        "{text}"
    );
}

#[tokio::test]
async fn an_environments_debug_output_hides_env_values() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let engine = Engine::lazy(&socket).unwrap();
    let env = DockerEnvironment::with_engine(engine, config(&socket));
    let text = format!("{env:?}");
    assert!(text.contains("API_TOKEN"), "{text}");
    assert!(!text.contains("very-secret-value"), "{text}");
}

#[tokio::test]
async fn an_engine_names_its_socket_and_a_lazy_one_fails_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let err = Engine::connect(&socket).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("docker: engine at unix://{} unreachable", socket.display())
    );
    assert!(err.chain().to_string().ends_with("(os error 2)"), "{}", err.chain());

    // A lazy engine is made without an answer, and says so on its first use.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let engine = Engine::lazy(&socket).unwrap();
    assert_eq!(engine.socket(), socket);
    assert!(
        format!("{engine:?}").contains(&socket.display().to_string()),
        "{engine:?}"
    );
    let env = DockerEnvironment::with_engine(engine.clone(), config(&socket));
    let err = bluegreen_core::Environment::status(&env, bluegreen_core::Slot::Blue)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Backend { temporary: true, .. }), "{err:?}");
}
