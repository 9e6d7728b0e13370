//! Running the calls of one assistant turn: each parsed call is looked up and spawned as a task
//! on the I/O runtime (the calls of a turn run concurrently), and awaited until its deadline; the
//! outcome becomes a [`ToolCallRecord`] whose `output` is exactly the text the model is shown.
//!
//! Status rule: a call that did not parse → `malformed` (`error: <why>`); a name not in the
//! registry → `unknown_tool`; the tool returned an error or panicked → `failed`; no answer
//! within the timeout → `timeout` (the task is aborted at its next `.await`); else `ok`.

use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;
use temper_model::chat::ParsedCall;
use temper_rewards::{ToolCallRecord, ToolCallStatus};
use tokio::time::Instant;

use super::{ToolContext, ToolRegistry};

/// One executed call: its record (for rewards and metrics) and the images it returned.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutedCall {
    /// Name, arguments, status and the response text.
    pub record: ToolCallRecord,
    /// Images to show the model after the text (only for `ok` calls).
    pub images: Vec<RgbImage>,
}

/// Runs `calls` (in order) against `registry`, all at once, each with `timeout`. Must be awaited
/// inside a tokio runtime with the time driver (the binary's I/O runtime).
pub async fn execute_calls(
    registry: &ToolRegistry,
    calls: &[ParsedCall],
    context: &ToolContext,
    timeout: Duration,
) -> Vec<ExecutedCall> {
    enum Pending {
        Done(ExecutedCall),
        Running {
            name: String,
            arguments: serde_json::Value,
            task: tokio::task::JoinHandle<Result<super::ToolOutput, super::ToolError>>,
        },
    }
    let deadline = Instant::now() + timeout;
    let pending: Vec<Pending> = calls
        .iter()
        .map(|parsed| {
            let call = match &parsed.result {
                Ok(call) => call,
                Err(why) => {
                    return Pending::Done(done(
                        parsed.name.clone(),
                        None,
                        ToolCallStatus::Malformed,
                        format!("error: {why}"),
                    ));
                }
            };
            // The parser only returns object arguments.
            let arguments = serde_json::Value::from(&call.arguments);
            let Some(tool) = registry.get(&call.name) else {
                let message = format!(
                    "error: there is no tool named `{}`; available tools: {}",
                    call.name,
                    registry.names().join(", ")
                );
                return Pending::Done(done(
                    Some(call.name.clone()),
                    Some(arguments),
                    ToolCallStatus::UnknownTool,
                    message,
                ));
            };
            let args = arguments.as_object().cloned().unwrap_or_default();
            let (tool, context) = (Arc::clone(tool), context.clone());
            let task = tokio::spawn(async move { tool.call(&args, &context).await });
            Pending::Running {
                name: call.name.clone(),
                arguments,
                task,
            }
        })
        .collect();
    let mut executed = Vec::with_capacity(pending.len());
    for p in pending {
        let (name, arguments, mut task) = match p {
            Pending::Done(call) => {
                executed.push(call);
                continue;
            }
            Pending::Running {
                name,
                arguments,
                task,
            } => (name, arguments, task),
        };
        let (status, output, images) = match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(Ok(output))) => (ToolCallStatus::Ok, output.text, output.images),
            Ok(Ok(Err(e))) => (ToolCallStatus::Failed, format!("error: {e}"), Vec::new()),
            Ok(Err(_)) => (
                ToolCallStatus::Failed,
                format!("error: the tool `{name}` crashed"),
                Vec::new(),
            ),
            Err(_) => {
                task.abort();
                (
                    ToolCallStatus::Timeout,
                    format!(
                        "error: the tool `{name}` did not answer within {:.3} s",
                        timeout.as_secs_f64()
                    ),
                    Vec::new(),
                )
            }
        };
        if status != ToolCallStatus::Ok {
            tracing::debug!(tool = %name, ?status, %output, "tool call did not succeed");
        }
        executed.push(ExecutedCall {
            record: ToolCallRecord {
                name: Some(name),
                arguments: Some(arguments),
                status,
                output,
            },
            images,
        });
    }
    executed
}

fn done(
    name: Option<String>,
    arguments: Option<serde_json::Value>,
    status: ToolCallStatus,
    output: String,
) -> ExecutedCall {
    ExecutedCall {
        record: ToolCallRecord {
            name,
            arguments,
            status,
            output,
        },
        images: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::{Map, Value};
    use temper_model::chat::JsonValue;
    use temper_model::chat::parse_tool_calls;

    use super::*;
    use crate::tools::{BoxFuture, Calculator, Tool, ToolError, ToolOutput};

    /// Sleeps for `ms` then answers, or panics when asked to.
    struct Slow;

    impl Tool for Slow {
        fn name(&self) -> &str {
            "slow"
        }
        fn description(&self) -> &str {
            "sleeps"
        }
        fn parameters(&self) -> JsonValue {
            JsonValue::Object(Vec::new())
        }
        fn call<'a>(
            &'a self,
            a: &'a Map<String, Value>,
            _: &'a ToolContext,
        ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
            Box::pin(async move {
                if a.get("panic").is_some() {
                    panic!("asked to");
                }
                tokio::time::sleep(Duration::from_millis(a["ms"].as_u64().unwrap())).await;
                Ok(ToolOutput::text("done"))
            })
        }
    }

    fn registry() -> ToolRegistry {
        let mut r = ToolRegistry::new();
        r.register(Arc::new(Calculator)).unwrap();
        r.register(Arc::new(Slow)).unwrap();
        r
    }

    fn run(text: &str, timeout_ms: u64) -> Vec<ToolCallRecord> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(execute_calls(
                &registry(),
                &parse_tool_calls(text),
                &ToolContext::default(),
                Duration::from_millis(timeout_ms),
            ))
            .into_iter()
            .map(|e| e.record)
            .collect()
    }

    #[test]
    fn every_status_with_the_text_the_model_sees() {
        let text = concat!(
            "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"6*7\"}}</tool_call>",
            "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1/0\"}}</tool_call>",
            "<tool_call>{\"name\": \"search\", \"arguments\": {}}</tool_call>",
            "<tool_call>{\"name\": calculator}</tool_call>",
            "<tool_call>{\"name\": \"slow\", \"arguments\": {\"ms\": 6000}}</tool_call>",
            "<tool_call>{\"name\": \"slow\", \"arguments\": {\"panic\": true}}</tool_call>",
        );
        let started = Instant::now();
        // Generous: the test machine may be loaded; only the slow call must time out.
        let records = run(text, 1500);
        assert!(
            started.elapsed() < Duration::from_millis(5000),
            "timeouts bound the wait"
        );
        let statuses: Vec<ToolCallStatus> = records.iter().map(|r| r.status).collect();
        use ToolCallStatus::*;
        assert_eq!(
            statuses,
            [Ok, Failed, UnknownTool, Malformed, Timeout, Failed]
        );
        assert_eq!(records[0].output, "42");
        assert_eq!(records[1].output, "error: division by zero");
        assert!(
            records[2]
                .output
                .contains("no tool named `search`; available tools: calculator, slow")
        );
        assert!(
            records[3]
                .output
                .starts_with("error: the tool call is not valid JSON")
        );
        assert!(records[3].name.is_none());
        assert!(records[4].output.contains("did not answer within 1.500 s"));
        assert!(records[5].output.contains("crashed"));
        assert_eq!(records[2].name.as_deref(), Some("search"));
    }

    #[test]
    fn calls_of_a_turn_run_concurrently() {
        let call = "<tool_call>{\"name\": \"slow\", \"arguments\": {\"ms\": 700}}</tool_call>";
        let started = Instant::now();
        let records = run(&call.repeat(4), 5000);
        assert!(records.iter().all(|r| r.status == ToolCallStatus::Ok));
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
    }
}
