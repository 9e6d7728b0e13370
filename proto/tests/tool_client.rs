//! [`ToolClient`] against an in-process tool service on 127.0.0.1:0: health at connect, calls,
//! tool errors as results, listing, a wrong token, timeouts and retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use temper_proto::tool::v1::tool_service_server::ToolService;
use temper_proto::tool::v1::{
    HealthRequest, HealthResponse, ListRequest, ToolCall, ToolList, ToolResult, ToolSpec,
};
use temper_proto::{
    ClientError, MessageLimits, RetryPolicy, SharedToken, ToolClient, ToolClientOptions, services,
};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Tools {
    calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl ToolService for Tools {
    async fn call(&self, request: Request<ToolCall>) -> Result<Response<ToolResult>, Status> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let call = request.into_inner();
        let result = match call.name.as_str() {
            "echo" => ToolResult {
                text: call.arguments_json,
                images: call.images,
                error: None,
            },
            "flaky" if n == 0 => return Err(Status::unavailable("warming up")),
            "flaky" => ToolResult {
                text: "ok".into(),
                ..ToolResult::default()
            },
            "slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                ToolResult::default()
            }
            other => ToolResult {
                error: Some(format!("unknown tool {other}")),
                ..ToolResult::default()
            },
        };
        Ok(Response::new(result))
    }

    async fn list(&self, _: Request<ListRequest>) -> Result<Response<ToolList>, Status> {
        Ok(Response::new(ToolList {
            tools: vec![ToolSpec {
                name: "echo".into(),
                description: "returns its arguments".into(),
                parameters_json: "{}".into(),
            }],
        }))
    }

    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        Ok(Response::new(HealthResponse {
            name: "tools".into(),
            version: "1".into(),
            tools: vec!["echo".into(), "flaky".into(), "slow".into()],
        }))
    }
}

async fn serve(tools: Tools) -> String {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", incoming.local_addr().unwrap());
    let token = SharedToken::new("tool-token").unwrap();
    let service = services::tool_server(tools, &token, MessageLimits::default());
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    url
}

fn options(timeout_ms: u64) -> ToolClientOptions {
    ToolClientOptions {
        timeout: Duration::from_millis(timeout_ms),
        retry: RetryPolicy {
            retries: 1,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        },
        limits: MessageLimits::default(),
    }
}

#[tokio::test]
async fn calls_lists_and_reports_tool_errors() {
    let tools = Tools::default();
    let url = serve(tools.clone()).await;
    let token = SharedToken::new("tool-token").unwrap();
    let client = ToolClient::connect(&url, &token, options(2000))
        .await
        .unwrap();
    assert_eq!(client.health().tools, ["echo", "flaky", "slow"]);

    let result = client
        .call("echo", r#"{"x":1}"#, vec![vec![1, 2, 3]])
        .await
        .unwrap();
    assert_eq!(
        (result.text.as_str(), result.images),
        (r#"{"x":1}"#, vec![vec![1, 2, 3]])
    );
    let result = client.call("nope", "{}", vec![]).await.unwrap();
    assert_eq!(result.error.as_deref(), Some("unknown tool nope"));
    assert_eq!(client.list().await.unwrap()[0].name, "echo");

    // UNAVAILABLE once, then the retry succeeds.
    assert_eq!(client.call("flaky", "{}", vec![]).await.unwrap().text, "ok");
    let calls_before = tools.calls.load(Ordering::SeqCst);
    let err = client.call("slow", "{}", vec![]).await;
    assert!(matches!(err, Err(ClientError::Timeout { .. })), "{err:?}");
    assert_eq!(tools.calls.load(Ordering::SeqCst), calls_before + 2);
}

#[tokio::test]
async fn a_wrong_token_or_no_service_fails_at_connect_naming_the_url() {
    let url = serve(Tools::default()).await;
    let wrong = SharedToken::new("other").unwrap();
    let err = ToolClient::connect(&url, &wrong, options(2000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Unauthenticated { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = ToolClient::connect(&gone, &wrong, options(500))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&gone));
}
