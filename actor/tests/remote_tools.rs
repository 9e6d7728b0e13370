//! Tools of a gRPC tool service used as actor tools: listed at connect, called with the prompt's
//! images as PNG, their images and errors passed back; a wrong token fails at connect.

use std::sync::Arc;

use image::{Rgb, RgbImage};
use serde_json::{Map, json};
use temper_actor::tools::{ToolContext, ToolError, ToolRegistry, connect_remote_tools};
use temper_proto::tool::v1::tool_service_server::ToolService;
use temper_proto::tool::v1::{
    HealthRequest, HealthResponse, ListRequest, ToolCall, ToolList, ToolResult, ToolSpec,
};
use temper_proto::{MessageLimits, SharedToken, ToolClientOptions, services};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// `flip` returns the first image mirrored left-right and says how many it got; `fail` fails.
struct Service;

#[tonic::async_trait]
impl ToolService for Service {
    async fn call(&self, request: Request<ToolCall>) -> Result<Response<ToolResult>, Status> {
        let call = request.into_inner();
        let result = match call.name.as_str() {
            "flip" => {
                let first = image::load_from_memory(&call.images[0]).unwrap().to_rgb8();
                let flipped = image::imageops::flip_horizontal(&first);
                let mut png = std::io::Cursor::new(Vec::new());
                flipped.write_to(&mut png, image::ImageFormat::Png).unwrap();
                ToolResult {
                    text: format!(
                        "{} image(s), args {}",
                        call.images.len(),
                        call.arguments_json
                    ),
                    images: vec![png.into_inner()],
                    error: None,
                }
            }
            _ => ToolResult {
                error: Some("the region is empty".into()),
                ..ToolResult::default()
            },
        };
        Ok(Response::new(result))
    }

    async fn list(&self, _: Request<ListRequest>) -> Result<Response<ToolList>, Status> {
        let spec = |name: &str, schema: &str| ToolSpec {
            name: name.into(),
            description: format!("the {name} tool"),
            parameters_json: schema.into(),
        };
        Ok(Response::new(ToolList {
            tools: vec![
                spec("flip", r#"{"type": "object", "properties": {}}"#),
                spec("fail", ""),
            ],
        }))
    }

    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        Ok(Response::new(HealthResponse {
            name: "test-tools".into(),
            version: "1".into(),
            tools: vec!["flip".into(), "fail".into()],
        }))
    }
}

/// Serves on 127.0.0.1:0 from a background thread; returns the url.
fn serve() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            tx.send(format!("http://{}", incoming.local_addr().unwrap()))
                .unwrap();
            let token = SharedToken::new("tools-token").unwrap();
            Server::builder()
                .add_service(services::tool_server(
                    Service,
                    &token,
                    MessageLimits::default(),
                ))
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// The client side's runtime (the binary's I/O runtime in a real run).
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn remote_tools_join_the_registry_and_see_the_prompt_images() {
    let url = serve();
    let token = SharedToken::new("tools-token").unwrap();
    let io = client_runtime();
    let tools = io
        .block_on(connect_remote_tools(
            &url,
            &token,
            ToolClientOptions::default(),
        ))
        .unwrap();
    let mut registry = ToolRegistry::new();
    for tool in tools {
        registry.register(tool).unwrap();
    }
    assert_eq!(registry.names(), ["fail", "flip"]);
    assert_eq!(registry.get("flip").unwrap().description(), "the flip tool");

    let image = RgbImage::from_fn(4, 2, |x, _| Rgb([x as u8 * 60, 0, 0]));
    let context = ToolContext {
        images: Arc::new(vec![image.clone()]),
    };
    let arguments: Map<_, _> = json!({"axis": "x"}).as_object().unwrap().clone();
    let flip = registry.get("flip").unwrap();
    let output = io.block_on(flip.call(&arguments, &context)).unwrap();
    assert_eq!(output.text, r#"1 image(s), args {"axis":"x"}"#);
    assert_eq!(
        output.images,
        vec![image::imageops::flip_horizontal(&image)]
    );

    let no_arguments = Map::new();
    let fail = registry.get("fail").unwrap();
    let failed = io.block_on(fail.call(&no_arguments, &context));
    assert_eq!(failed, Err(ToolError::Failed("the region is empty".into())));
}

#[test]
fn a_wrong_token_fails_at_connect_naming_the_url() {
    let url = serve();
    let wrong = SharedToken::new("guess").unwrap();
    let connected = client_runtime().block_on(connect_remote_tools(
        &url,
        &wrong,
        ToolClientOptions::default(),
    ));
    let err = match connected {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a wrong token was accepted"),
    };
    assert!(err.contains(&url), "{err}");
}
