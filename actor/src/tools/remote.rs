//! Tools served over gRPC by a `ToolService` (`proto/temper/tool/v1/tool.proto`), e.g. written in
//! Python with `temper_plugins.serve_tool`. [`connect_remote_tools`] connects (health check, shared
//! token), lists the service's tools and wraps each as a [`Tool`] the registry can hold next to the
//! built-ins. A call is one async RPC on the runtime the tool loop runs its calls on (the
//! binary's I/O runtime); the prompt's images travel as PNG and returned PNGs become images the
//! model sees.

use std::io::Cursor;
use std::sync::Arc;

use image::{ImageFormat, RgbImage};
use serde_json::{Map, Value};
use temper_model::chat::JsonValue;
use temper_proto::{SharedToken, ToolClient, ToolClientOptions};

use super::{BoxFuture, Tool, ToolContext, ToolError, ToolOutput};
use crate::error::{ActorError, Result};

/// One tool of a remote tool service.
pub struct RemoteTool {
    name: String,
    description: String,
    parameters: JsonValue,
    client: ToolClient,
}

/// Connects to the tool service at `url` and returns one [`Tool`] per tool it lists (await it on
/// the runtime the tool calls will run on).
pub async fn connect_remote_tools(
    url: &str,
    token: &SharedToken,
    options: ToolClientOptions,
) -> Result<Vec<Arc<dyn Tool>>> {
    let client = ToolClient::connect(url, token, options)
        .await
        .map_err(|e| ActorError::Tools(e.to_string()))?;
    let specs = client
        .list()
        .await
        .map_err(|e| ActorError::Tools(e.to_string()))?;
    specs
        .into_iter()
        .map(|spec| {
            let schema = if spec.parameters_json.trim().is_empty() {
                "{}"
            } else {
                spec.parameters_json.as_str()
            };
            let parameters: JsonValue = serde_json::from_str(schema).map_err(|e| {
                ActorError::Tools(format!(
                    "tool `{}` of {url} has an invalid parameters schema: {e}",
                    spec.name
                ))
            })?;
            let tool: Arc<dyn Tool> = Arc::new(RemoteTool {
                name: spec.name,
                description: spec.description,
                parameters,
                client: client.clone(),
            });
            Ok(tool)
        })
        .collect()
}

impl Tool for RemoteTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> JsonValue {
        self.parameters.clone()
    }

    fn call<'a>(
        &'a self,
        arguments: &'a Map<String, Value>,
        context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let arguments = Value::Object(arguments.clone()).to_string();
            let images = context
                .images
                .iter()
                .map(encode_png)
                .collect::<Result<Vec<_>, _>>()?;
            let result = self
                .client
                .call(&self.name, &arguments, images)
                .await
                .map_err(|e| ToolError::Failed(format!("tool service unavailable: {e}")))?;
            if let Some(error) = result.error {
                return Err(ToolError::Failed(error));
            }
            let images = result
                .images
                .iter()
                .map(|png| decode_png(png))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ToolOutput {
                text: result.text,
                images,
            })
        })
    }
}

fn encode_png(image: &RgbImage) -> Result<Vec<u8>, ToolError> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|e| ToolError::Failed(format!("could not encode an image for the tool: {e}")))?;
    Ok(bytes.into_inner())
}

fn decode_png(bytes: &[u8]) -> Result<RgbImage, ToolError> {
    image::load_from_memory(bytes)
        .map(|image| image.to_rgb8())
        .map_err(|e| ToolError::Failed(format!("the tool returned an unreadable image: {e}")))
}
