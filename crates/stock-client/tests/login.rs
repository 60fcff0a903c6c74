//! Login against a small real HTTP server speaking the documented Mediboy shapes
//! (the Mediboy API itself cannot run here).

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::time::Duration;
use stock_client::{LoginError, LoginTarget, login};

/// Serves `router` on 127.0.0.1:0 and returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn answering(status: StatusCode, body: &'static str) -> Router {
    Router::new().route(
        "/login",
        post(move || async move { (status, [("content-type", "application/json")], body).into_response() }),
    )
}

#[tokio::test]
async fn finds_the_token_and_user_and_sends_the_credentials() {
    let router = Router::new().route(
        "/api/login",
        post(|Json(body): Json<Value>| async move {
            assert_eq!(body, json!({"email": "ann@pharmacy.test", "password": "s3cret"}));
            Json(json!({"data": {"access_token": "tok-1", "user": {"id": 7, "name": "Ann"}}}))
        }),
    );
    let base = serve(router).await;
    let session = login(&LoginTarget::new(format!("{base}/api")), " ann@pharmacy.test ", "s3cret").await.unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&session.token), "tok-1");
    assert_eq!(session.user.unwrap().id, "7");
}

#[tokio::test]
async fn wrong_credentials_are_401_and_422() {
    for status in [StatusCode::UNAUTHORIZED, StatusCode::UNPROCESSABLE_ENTITY] {
        let base = serve(answering(status, r#"{"message":"These credentials do not match our records."}"#)).await;
        let err = login(&LoginTarget::new(base), "a@b.c", "wrong-password").await.unwrap_err();
        assert_eq!(
            err,
            LoginError::WrongCredentials { message: Some("These credentials do not match our records.".into()) }
        );
        assert_eq!(err.kind(), "wrong_credentials");
        assert!(!err.to_string().contains("wrong-password"), "the password never appears");
    }
}

#[tokio::test]
async fn server_errors_say_the_status() {
    let base = serve(answering(StatusCode::INTERNAL_SERVER_ERROR, "<html>boom</html>")).await;
    let err = login(&LoginTarget::new(base), "a@b.c", "pw").await.unwrap_err();
    assert_eq!(err, LoginError::ServerError { status: 500, message: None });
    assert_eq!(err.to_string(), "the server answered 500");
}

#[tokio::test]
async fn garbage_and_tokenless_answers_are_unexpected() {
    let base = serve(answering(StatusCode::OK, "not json at all")).await;
    let err = login(&LoginTarget::new(base), "a@b.c", "pw").await.unwrap_err();
    assert_eq!(err.kind(), "unexpected_answer");
    let base = serve(answering(StatusCode::OK, r#"{"user":{"id":1}}"#)).await;
    let err = login(&LoginTarget::new(base), "a@b.c", "pw").await.unwrap_err();
    assert!(err.to_string().contains("no token"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let router = Router::new().route("/login", post(|| async { std::future::pending::<()>().await }));
    let base = serve(router).await;
    let target = LoginTarget { timeout: Duration::from_millis(500), ..LoginTarget::new(base) };
    let err = tokio::time::timeout(Duration::from_secs(10), login(&target, "a@b.c", "pw"))
        .await
        .expect("login hung")
        .unwrap_err();
    assert_eq!(err, LoginError::Unreachable { reason: "no answer within 0.5 s".into() });
}

#[tokio::test]
async fn nothing_listening_is_unreachable_and_bad_input_is_refused_before_sending() {
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let err = login(&LoginTarget::new(format!("http://127.0.0.1:{port}")), "a@b.c", "pw").await.unwrap_err();
    assert_eq!(err.kind(), "unreachable");
    assert_eq!(
        login(&LoginTarget::new("http://x"), "", "pw").await.unwrap_err(),
        LoginError::MissingInput("enter your email address")
    );
    assert_eq!(login(&LoginTarget::new("mailto:x"), "a@b.c", "pw").await.unwrap_err().kind(), "invalid_url");
}
